// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package framing

import (
	"bytes"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// The Meta format's bytes, as docs/protocol.md ("FramesGSO frames") states
// them: a peer in another language implements from that table.
func TestMetaFormatBytes(t *testing.T) {
	var e Encoder
	b := e.Begin(nil, 0x14, Meta, []byte{0xaa, 0xbb}, MaxMetaBatchBody)
	b = e.Add(b, []byte{1, 2}, gso.Meta{})
	b = e.Add(b, []byte{3}, gso.Meta{Flags: gso.NeedsCsum | gso.DataValid, CsumStart: 0x0102, CsumOffset: 0x0304})
	b = e.Add(b, []byte{4}, gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv6 | gso.TypeECN, HdrLen: 0x0506, Size: 0x0708, CsumStart: 9, CsumOffset: 10})
	b = e.End(b)
	want := []byte{
		0x14, 0, 0, 32, // type, body length
		0xaa, 0xbb, // caller's prefix
		3,                // count
		0, 0, 2, 0, 1, 2, // plain frame: length u24, flags 0
		0, 0, 1, 0b101, 1, 2, 3, 4, 3, // NEEDS_CSUM|DATA_VALID, csum start/offset
		0, 0, 1, 0b011, 0, 9, 0, 10, 0x84, 5, 6, 7, 8, 4, // NEEDS_CSUM|GSO, csum, type, hdrLen, size
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded\n %x\nwant\n %x", b, want)
	}

	// Plain: u16 lengths, metadata ignored.
	b = e.Begin(nil, 0x10, Plain, nil, 1<<20)
	b = e.Add(b, []byte{7, 8, 9}, gso.Meta{})
	if b = e.End(b); !bytes.Equal(b, []byte{0x10, 0, 0, 6, 1, 0, 3, 7, 8, 9}) {
		t.Fatalf("plain batch %x", b)
	}
}

// An encoder never emits an empty batch, always takes one frame into an
// empty batch whatever the body limit, and stops at 128 frames.
func TestEncoderLimits(t *testing.T) {
	var e Encoder
	b := e.Begin([]byte("keep"), 0x10, Plain, nil, 10)
	if b = e.End(b); string(b) != "keep" {
		t.Fatalf("an empty batch left %q", b)
	}
	b = e.Begin(nil, 0x14, Meta, nil, 10)
	big := make([]byte, 100)
	if !e.Fits(len(big), gso.Meta{}) {
		t.Fatal("an empty batch refused a frame over the body limit")
	}
	_ = e.Add(b, big, gso.Meta{}) // only the encoder's count and body length matter below
	if e.Fits(1, gso.Meta{}) {
		t.Fatal("a batch past its body limit took another frame")
	}
	if e.Fits(MaxSuperFrame+1, gso.Meta{}) || (&Encoder{format: Plain}).Fits(MaxPlainFrame+1, gso.Meta{}) {
		t.Fatal("a frame longer than its format carries fits")
	}
	b = e.Begin(nil, 0x10, Plain, nil, 1<<20)
	for e.Fits(0, gso.Meta{}) {
		b = e.Add(b, nil, gso.Meta{})
	}
	if e.Count() != MaxBatchFrames {
		t.Fatalf("batch closed at %d frames, want %d", e.Count(), MaxBatchFrames)
	}
	_ = e.End(b)
}

// Metadata checks: what gso.Split can act on passes, the rest does not.
func TestValidMeta(t *testing.T) {
	tcp := gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, HdrLen: 54, Size: 1448, CsumStart: 34, CsumOffset: 16}
	for _, tc := range []struct {
		name string
		m    gso.Meta
		n    int
		ok   bool
	}{
		{"zero", gso.Meta{}, 0, true},
		{"data valid", gso.Meta{Flags: gso.DataValid}, 60, true},
		{"tcp super-frame", tcp, 60000, true},
		{"ecn", func() gso.Meta { m := tcp; m.Type |= gso.TypeECN; return m }(), 60000, true},
		{"checksum field past the end", tcp, 51, false},
		{"checksum in the Ethernet header", gso.Meta{Flags: gso.NeedsCsum, CsumStart: 10, CsumOffset: 0}, 60, false},
		{"offsets without NEEDS_CSUM", gso.Meta{CsumStart: 34, CsumOffset: 16}, 60, false},
		{"UFO", func() gso.Meta { m := tcp; m.Type = gso.TypeUDP; return m }(), 60000, false},
		{"udp with ecn", func() gso.Meta { m := tcp; m.Type = gso.TypeUDPL4 | gso.TypeECN; return m }(), 60000, false},
		{"unknown type", func() gso.Meta { m := tcp; m.Type = 2; return m }(), 60000, false},
		{"zero segment size", func() gso.Meta { m := tcp; m.Size = 0; return m }(), 60000, false},
		{"gso without NEEDS_CSUM", func() gso.Meta { m := tcp; m.Flags = 0; m.CsumStart, m.CsumOffset = 0, 0; return m }(), 60000, false},
		{"header past the frame", func() gso.Meta { m := tcp; m.HdrLen = 9000; return m }(), 8000, false},
		{"unknown flag", gso.Meta{Flags: 4}, 60, false},
	} {
		if got := ValidMeta(tc.m, tc.n); got != tc.ok {
			t.Errorf("%s: ValidMeta = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
