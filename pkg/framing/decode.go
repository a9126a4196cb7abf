// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package framing

import (
	"encoding/binary"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// Verdict is what a receiver does with a well-formed frame.
type Verdict uint8

const (
	// Deliver: the frame is within its limit and its metadata is sound.
	Deliver Verdict = iota
	// Oversize: longer than the receiver's limit; skipped and counted.
	Oversize
	// BadMeta: metadata a segmenter could not act on (offsets outside the
	// frame, an unknown GSO type, a zero segment size); skipped and counted.
	// The batch itself is intact, so the session goes on.
	BadMeta
)

// Limits are what a receiver accepts.
type Limits struct {
	// MaxFrame bounds ordinary frames, and the segment size of a super-frame
	// (a segment could never be delivered whole otherwise).
	MaxFrame int
	// MaxSuper bounds frames with a GSO type (Meta batches only).
	MaxSuper int
}

// FrameInfo describes one decoded frame.
type FrameInfo struct {
	Header  int // per-frame header bytes before the frame
	Len     int // frame bytes
	Meta    gso.Meta
	Verdict Verdict
}

// Decoder walks one batch at a time, checking every frame header against the
// batch (no overrun, no bytes after the last frame) and its limits. The
// stream form (ReadFrame) and the slice form (NextInBody) share Next.
type Decoder struct {
	Limits
	format Format
	frames int    // frames left in the batch
	body   int    // body bytes left
	rest   []byte // slice form: the unread body
}

// Begin starts a batch of count frames in format f whose frames take body
// bytes (the body after its count byte).
func (d *Decoder) Begin(f Format, count, body int) error {
	if count == 0 || count > MaxBatchFrames {
		return formatErr("batch of %d frames, want 1..%d", count, MaxBatchFrames)
	}
	if body < count*f.minHeader() {
		return formatErr("batch of %d frames in %d bytes cannot hold their headers", count, body)
	}
	d.format, d.frames, d.body = f, count, body
	return nil
}

// Left is the number of frames of the batch not yet decoded.
func (d *Decoder) Left() int { return d.frames }

// Window is how many bytes Next needs at most to parse the next frame header:
// never more than the batch has left, so a stream reader peeking this much
// never waits for bytes beyond the batch.
func (d *Decoder) Window() int {
	w := 2
	if d.format == Meta {
		w = MaxFrameHeader
	}
	return min(w, d.body)
}

// Next parses the frame header at the start of p (at least Window bytes, or
// all the batch has left) and consumes the frame from the batch.
func (d *Decoder) Next(p []byte) (FrameInfo, error) {
	var fi FrameInfo
	if d.frames == 0 {
		return fi, formatErr("no frame left in the batch")
	}
	if d.body < d.format.minHeader() || len(p) < d.format.minHeader() {
		return fi, formatErr("batch ends inside a frame header with %d frames still declared", d.frames)
	}
	if d.format != Meta {
		fi.Header, fi.Len = 2, int(binary.BigEndian.Uint16(p))
	} else {
		fi.Len = int(p[0])<<16 | int(p[1])<<8 | int(p[2])
		flags := p[3]
		if flags&^wireKnown != 0 {
			return fi, formatErr("frame header flags %#02x has unknown bits", flags)
		}
		fi.Header = 4
		if flags&wireCsum != 0 {
			fi.Header += 4
		}
		if flags&wireGSO != 0 {
			fi.Header += 5
		}
		if fi.Header > d.body || fi.Header > len(p) {
			return fi, formatErr("batch ends inside a frame header with %d frames still declared", d.frames)
		}
		q := p[4:]
		if flags&wireCsum != 0 {
			fi.Meta.Flags |= gso.NeedsCsum
			fi.Meta.CsumStart = binary.BigEndian.Uint16(q)
			fi.Meta.CsumOffset = binary.BigEndian.Uint16(q[2:])
			q = q[4:]
		}
		if flags&wireGSO != 0 {
			fi.Meta.Type = q[0]
			fi.Meta.HdrLen = binary.BigEndian.Uint16(q[1:])
			fi.Meta.Size = binary.BigEndian.Uint16(q[3:])
		}
		if flags&wireDataValid != 0 {
			fi.Meta.Flags |= gso.DataValid
		}
	}
	size := fi.Header + fi.Len
	if size > d.body {
		return fi, formatErr("frame of %d bytes overruns its batch (%d bytes left)", fi.Len, d.body-fi.Header)
	}
	d.frames--
	d.body -= size
	if d.frames == 0 && d.body != 0 {
		return fi, formatErr("batch has %d bytes after its last declared frame", d.body)
	}
	switch {
	case !ValidMeta(fi.Meta, fi.Len):
		fi.Verdict = BadMeta
	case fi.Meta.Segmented():
		if fi.Len > d.MaxSuper || int(fi.Meta.Size) > d.MaxFrame {
			fi.Verdict = Oversize
		}
	case fi.Len > d.MaxFrame:
		fi.Verdict = Oversize
	}
	return fi, nil
}

// Source is a buffered stream a frame can be read out of in place, such as
// a *bufio.Reader whose buffer holds MaxFrameHeader plus the largest frame
// the limits allow.
type Source interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
}

// ReadFrame consumes the next frame of the current batch from src (stream
// form). For a frame to deliver, frame points into src's buffer and is valid
// until src is used again; any other frame is skipped (frame is nil).
func (d *Decoder) ReadFrame(src Source) (frame []byte, fi FrameInfo, err error) {
	p, err := src.Peek(d.Window())
	if err != nil {
		return nil, fi, err
	}
	if fi, err = d.Next(p); err != nil {
		return nil, fi, err
	}
	n := fi.Header + fi.Len
	if fi.Verdict != Deliver {
		_, err = src.Discard(n)
		return nil, fi, err
	}
	if p, err = src.Peek(n); err != nil {
		return nil, fi, err
	}
	// Discard within what Peek buffered moves an offset and reads nothing,
	// so p stays valid.
	if _, err = src.Discard(n); err != nil {
		return nil, fi, err
	}
	return p[fi.Header:n], fi, nil
}

// BeginBody starts the slice form on a whole batch body in memory, from its
// count byte on (the caller has taken any prefix off).
func (d *Decoder) BeginBody(f Format, body []byte) error {
	if len(body) < 1 {
		return formatErr("empty batch body")
	}
	if err := d.Begin(f, int(body[0]), len(body)-1); err != nil {
		return err
	}
	d.rest = body[1:]
	return nil
}

// NextInBody returns the next frame of a BeginBody batch; frame aliases the
// body and is nil for a frame that is not to be delivered.
func (d *Decoder) NextInBody() (frame []byte, fi FrameInfo, err error) {
	fi, err = d.Next(d.rest)
	if err != nil {
		d.rest = nil
		return nil, fi, err
	}
	n := fi.Header + fi.Len
	if fi.Verdict == Deliver {
		frame = d.rest[fi.Header:n:n]
	}
	d.rest = d.rest[n:]
	return frame, fi, nil
}
