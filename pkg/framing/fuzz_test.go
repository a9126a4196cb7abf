// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package framing

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

type decoded struct {
	frame []byte
	fi    FrameInfo
}

// decodeBoth decodes one batch body with the slice form and with the stream
// form, failing the test when they disagree.
func decodeBoth(t *testing.T, f Format, lim Limits, body []byte) ([]decoded, error) {
	t.Helper()
	var d Decoder
	d.Limits = lim
	var slice []decoded
	err := d.BeginBody(f, body)
	for err == nil && d.Left() > 0 {
		var fr []byte
		var fi FrameInfo
		fr, fi, err = d.NextInBody()
		if err == nil {
			slice = append(slice, decoded{bytes.Clone(fr), fi})
		}
	}
	var s Decoder
	s.Limits = lim
	var stream []decoded
	var serr error
	if len(body) == 0 {
		serr = formatErr("empty")
	} else {
		br := bufio.NewReaderSize(bytes.NewReader(body[1:]), MaxFrameHeader+MaxSuperFrame)
		serr = s.Begin(f, int(body[0]), len(body)-1)
		for serr == nil && s.Left() > 0 {
			var fr []byte
			var fi FrameInfo
			fr, fi, serr = s.ReadFrame(br)
			if serr == nil {
				stream = append(stream, decoded{bytes.Clone(fr), fi})
			}
		}
	}
	if (err == nil) != (serr == nil) || len(slice) != len(stream) {
		t.Fatalf("slice form: %d frames, %v; stream form: %d frames, %v", len(slice), err, len(stream), serr)
	}
	for i := range slice {
		if !bytes.Equal(slice[i].frame, stream[i].frame) || slice[i].fi != stream[i].fi {
			t.Fatalf("frame %d: slice form %+v, stream form %+v", i, slice[i].fi, stream[i].fi)
		}
	}
	if err != nil && !errors.Is(err, ErrFormat) {
		t.Fatalf("decoder error %v is not a format error", err)
	}
	return slice, err
}

func encodeAll(f Format, frames [][]byte, metas []gso.Meta, limit int) [][]byte {
	var bodies [][]byte
	var e Encoder
	for i := 0; i < len(frames); {
		b := e.Begin(nil, 0x10, f, nil, limit)
		for ; i < len(frames) && e.Fits(len(frames[i]), metas[i]); i++ {
			b = e.Add(b, frames[i], metas[i])
		}
		b = e.End(b)
		typ, n := ParseHeader(b)
		if typ != 0x10 || n != len(b)-HeaderLen {
			panic("encoder wrote a wrong header")
		}
		bodies = append(bodies, b[HeaderLen:])
	}
	return bodies
}

// metaFrom derives a metadata block from fuzz bytes, valid or not.
func metaFrom(b []byte) gso.Meta {
	var x [9]byte
	copy(x[:], b)
	return gso.Meta{Flags: x[0] & 3, Type: x[1] & 0x87, HdrLen: binary.BigEndian.Uint16(x[2:]) & 0x3ff,
		Size: binary.BigEndian.Uint16(x[4:]), CsumStart: uint16(x[6]), CsumOffset: uint16(x[7] & 31)}
}

// FuzzBatch covers both uses of the codec. An arbitrary body must decode
// the same in the stream and the slice form, without a panic or a frame
// over its limit, and what it delivers re-encodes to a body that decodes to
// the same frames. Frames cut from the input, with metadata, must come back
// from encoder and decoder unchanged (metadata in canonical form) unless
// they are over the limit or their metadata is unsound.
func FuzzBatch(f *testing.F) {
	f.Add([]byte{2, 0, 1, 0xaa, 0, 2, 0xbb, 0xcc}, false, uint16(1600), []byte{3, 0, 7})
	f.Add([]byte{1, 0, 0, 3, 0, 1, 2, 3}, true, uint16(1600), []byte{200, 1, 1, 40})
	f.Add([]byte{1, 0, 0, 60, 3, 0, 34, 0, 16, 1, 0, 54, 0, 10}, true, uint16(64), []byte{255, 255})
	f.Fuzz(func(t *testing.T, data []byte, meta bool, maxFrame uint16, cuts []byte) {
		format := Plain
		if meta {
			format = Meta
		}
		lim := Limits{MaxFrame: int(maxFrame), MaxSuper: MaxSuperFrame}
		got, err := decodeBoth(t, format, lim, data)
		for _, g := range got {
			if g.fi.Verdict != Deliver {
				if g.frame != nil {
					t.Fatalf("a frame with verdict %d was handed out", g.fi.Verdict)
				}
				continue
			}
			limit := lim.MaxFrame
			if g.fi.Meta.Segmented() {
				limit = lim.MaxSuper
			}
			if len(g.frame) != g.fi.Len || len(g.frame) > limit || !ValidMeta(g.fi.Meta, len(g.frame)) {
				t.Fatalf("delivered a %d-byte frame (limit %d) with %+v", len(g.frame), limit, g.fi.Meta)
			}
		}
		if err == nil {
			var frames [][]byte
			var metas []gso.Meta
			for _, g := range got {
				if g.fi.Verdict == Deliver {
					frames, metas = append(frames, g.frame), append(metas, g.fi.Meta)
				}
			}
			checkRoundTrip(t, format, lim, frames, metas)
		}

		// Frames of up to ~8 KiB cut from data, some over the limit, each with
		// metadata drawn from the input.
		cuts = cuts[:min(len(cuts), 256)]
		var frames [][]byte
		var metas []gso.Meta
		for i, c := range cuts {
			n := min(int(c)*32, len(data))
			frames = append(frames, data[:n])
			var m gso.Meta
			if format == Meta && i+1 < len(cuts) {
				m = metaFrom(data[min(i, len(data)):])
			}
			metas = append(metas, m)
		}
		checkRoundTrip(t, format, lim, frames, metas)
	})
}

func checkRoundTrip(t *testing.T, f Format, lim Limits, frames [][]byte, metas []gso.Meta) {
	t.Helper()
	var want []decoded
	for i, fr := range frames {
		m := Canonical(metas[i])
		limit := lim.MaxFrame
		if m.Segmented() {
			limit = lim.MaxSuper
		}
		if ValidMeta(m, len(fr)) && len(fr) <= limit && (!m.Segmented() || int(m.Size) <= lim.MaxFrame) {
			want = append(want, decoded{fr, FrameInfo{Meta: m}})
		}
	}
	var got []decoded
	for _, body := range encodeAll(f, frames, metas, 16<<10) {
		d, err := decodeBoth(t, f, lim, body)
		if err != nil {
			t.Fatalf("the decoder refuses what the encoder wrote: %v", err)
		}
		for _, g := range d {
			if g.fi.Verdict == Deliver {
				got = append(got, g)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames came back, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].frame, want[i].frame) || got[i].fi.Meta != want[i].fi.Meta {
			t.Fatalf("frame %d came back as %d bytes %+v, want %d bytes %+v", i,
				len(got[i].frame), got[i].fi.Meta, len(want[i].frame), want[i].fi.Meta)
		}
	}
}
