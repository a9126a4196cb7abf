// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package ethdev

import (
	"encoding/binary"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

func TestAccepts(t *testing.T) {
	full := Offload{VnetHdr: true, Csum: true, TSO4: true, TSO6: true}
	tso4 := gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, Size: 1448, CsumStart: 34, CsumOffset: 16}
	for _, c := range []struct {
		o    Offload
		m    gso.Meta
		want bool
	}{
		{Offload{}, gso.Meta{}, true},
		{Offload{}, gso.Meta{Flags: gso.NeedsCsum}, false},
		{Offload{}, tso4, false},
		{full, tso4, true},
		{full, gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv6 | gso.TypeECN}, true},
		{full, gso.Meta{Type: gso.TypeUDPL4}, false},
		{Offload{VnetHdr: true, TSO4: true}, tso4, false}, // partial checksum without Csum
		{Offload{VnetHdr: true}, gso.Meta{Flags: gso.DataValid}, true},
		{full, gso.Meta{Type: gso.TypeUDP}, false}, // UFO: never
	} {
		if got := c.o.Accepts(c.m); got != c.want {
			t.Errorf("%+v.Accepts(%+v) = %v, want %v", c.o, c.m, got, c.want)
		}
	}
	if MaxFrame(1500, Offload{}) != 1522 || MaxFrame(1500, full) != MaxSuperFrame {
		t.Errorf("MaxFrame = %d, %d", MaxFrame(1500, Offload{}), MaxFrame(1500, full))
	}
}

// Every piece a Segmenter emits has a zero virtio_net_hdr in front, so a
// device reading headers writes it as an ordinary frame.
func TestSegmenterPutsZeroHeaderBeforeEachPiece(t *testing.T) {
	f := make([]byte, 14+20+20+3000)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	f[14] = 0x45
	binary.BigEndian.PutUint16(f[16:], uint16(len(f)-14))
	f[14+9] = 6
	f[34+12] = 5 << 4
	var s Segmenter
	pieces := 0
	ok := s.Split(gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, Size: 1000, CsumStart: 34, CsumOffset: 16}, f, func(p []byte) {
		pieces++
		if !gso.ParseVirtio(p).IsZero() || len(p) > gso.VirtioLen+54+1000 {
			t.Errorf("piece %d: header %+v, %d bytes", pieces, gso.ParseVirtio(p), len(p))
		}
	})
	if !ok || pieces != 3 {
		t.Fatalf("Split = %v, %d pieces, want 3", ok, pieces)
	}
	pieces = 0
	if !s.Split(gso.Meta{Flags: gso.DataValid}, f[:60], func(p []byte) {
		pieces++
		if len(p) != gso.VirtioLen+60 || !gso.ParseVirtio(p).IsZero() {
			t.Errorf("a frame needing nothing came out as %d bytes with header %+v", len(p), gso.ParseVirtio(p))
		}
	}) || pieces != 1 {
		t.Fatal("Split dropped a frame that needs nothing done")
	}
}
