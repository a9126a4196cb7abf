// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package gso

import (
	"bytes"
	"encoding/binary"
	"testing"
)

type emitted struct {
	frame []byte
	meta  Meta
}

func collect(max int) (*Coalescer, *[]emitted) {
	var out []emitted
	c := NewCoalescer(make([]byte, max), func(f []byte, m Meta) { out = append(out, emitted{bytes.Clone(f), m}) })
	return c, &out
}

// segments cuts a super-frame built by tcpFrame as the UDP channel's sender
// does: complete checksums, vouched for with DataValid.
func segments(t *testing.T, f []byte, v6 bool, mss int) [][]byte {
	t.Helper()
	l4 := 14 + 20
	gt := TypeTCPv4
	if v6 {
		l4, gt = 14+40, TypeTCPv6
	}
	var segs [][]byte
	ok := Split(Meta{Flags: NeedsCsum, Type: gt, Size: uint16(mss), CsumStart: uint16(l4), CsumOffset: 16}, f,
		make([]byte, MaxSuperFrameTest), func(s []byte) { segs = append(segs, bytes.Clone(s)) })
	if !ok {
		t.Fatal("Split refused the test frame")
	}
	return segs
}

// MaxSuperFrameTest is the receivers' limit in these tests (ethdev's).
const MaxSuperFrameTest = 65535 + 14 + 8

// A super-frame cut into segments and joined again is the same super-frame:
// its payload whole, a partial checksum that completes to a valid one, and,
// split again, exactly the segments that went in.
func TestCoalesceRebuildsSuperFrame(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, mss := range []int{1367, 8000} {
			f := tcpFrame(v6, false, 60000, tcpFlagACK|tcpFlagPSH)
			ipLen := 20
			if v6 {
				ipLen = 40
			}
			segs := segments(t, f, v6, mss)
			c, out := collect(MaxSuperFrameTest)
			for _, s := range segs {
				c.Add(s, Meta{Flags: DataValid})
			}
			c.Flush()
			if len(*out) != 1 {
				t.Fatalf("v6=%v mss=%d: %d frames out of %d segments, want 1", v6, mss, len(*out), len(segs))
			}
			got := (*out)[0]
			want := Meta{Flags: NeedsCsum, Type: TypeTCPv4, HdrLen: uint16(14 + ipLen + 20), Size: uint16(mss),
				CsumStart: uint16(14 + ipLen), CsumOffset: 16}
			if v6 {
				want.Type = TypeTCPv6
			}
			if got.meta != want {
				t.Errorf("v6=%v mss=%d: meta %+v, want %+v", v6, mss, got.meta, want)
			}
			if !bytes.Equal(got.frame[14+ipLen+20:], f[14+ipLen+20:]) {
				t.Errorf("v6=%v mss=%d: payload differs from the original super-frame's", v6, mss)
			}
			full := bytes.Clone(got.frame)
			if !FinishChecksum(full, int(want.CsumStart), 16) {
				t.Fatal("FinishChecksum refused the super-frame")
			}
			valid(t, full, 14, v6)
			var again [][]byte
			Split(got.meta, got.frame, make([]byte, MaxSuperFrameTest), func(s []byte) { again = append(again, bytes.Clone(s)) })
			if len(again) != len(segs) {
				t.Fatalf("v6=%v mss=%d: split again into %d segments, want %d", v6, mss, len(again), len(segs))
			}
			for i := range segs {
				if !bytes.Equal(again[i], segs[i]) {
					t.Fatalf("v6=%v mss=%d: segment %d differs after join and split", v6, mss, i)
				}
			}
		}
	}
}

// Runs end where GRO's do, and every frame comes out once, in order.
func TestCoalesceBoundaries(t *testing.T) {
	segs := segments(t, tcpFrame(false, false, 5*1000, tcpFlagACK|tcpFlagPSH), false, 1000) // 5 × 1000, PSH on the last
	other := segments(t, tcpFrame(true, false, 2*1000, tcpFlagACK), true, 1000)
	dv := Meta{Flags: DataValid}
	type step struct {
		f []byte
		m Meta
	}
	cases := []struct {
		name  string
		in    []step
		sizes []int // payload bytes of each frame out
		types []uint8
	}{
		{"one run", []step{{segs[0], dv}, {segs[1], dv}, {segs[2], dv}, {segs[3], dv}, {segs[4], dv}},
			[]int{5000}, []uint8{TypeTCPv4}},
		{"another flow between", []step{{segs[0], dv}, {segs[1], dv}, {other[0], dv}, {segs[2], dv}, {segs[3], dv}},
			[]int{2000, 1000, 2000}, []uint8{TypeTCPv4, TypeNone, TypeTCPv4}},
		{"a gap", []step{{segs[0], dv}, {segs[2], dv}, {segs[3], dv}},
			[]int{1000, 2000}, []uint8{TypeNone, TypeTCPv4}},
		{"PSH ends the run", []step{{segs[3], dv}, {segs[4], dv}, {segs[0], dv}},
			[]int{2000, 1000}, []uint8{TypeTCPv4, TypeNone}},
		{"unvouched checksum passes alone", []step{{segs[0], dv}, {segs[1], Meta{}}, {segs[2], dv}},
			[]int{1000, 1000, 1000}, []uint8{TypeNone, TypeNone, TypeNone}},
	}
	for _, tc := range cases {
		c, out := collect(MaxSuperFrameTest)
		for _, s := range tc.in {
			c.Add(s.f, s.m)
		}
		c.Flush()
		if len(*out) != len(tc.sizes) {
			t.Errorf("%s: %d frames out, want %d", tc.name, len(*out), len(tc.sizes))
			continue
		}
		for i, e := range *out {
			l3, et, _ := L3Offset(e.frame)
			l4 := l3 + 20
			if et == etherTypeIPv6 {
				l4 = l3 + 40
			}
			n := len(e.frame) - (l4 + int(e.frame[l4+12]>>4)*4)
			if n != tc.sizes[i] || e.meta.Type != tc.types[i] {
				t.Errorf("%s: frame %d has %d bytes, type %d; want %d, %d", tc.name, i, n, e.meta.Type, tc.sizes[i], tc.types[i])
			}
		}
	}
}

// A SYN, a FIN, a frame with IP options or an ECN mark that differs: each
// passes alone and unchanged.
func TestCoalesceLeavesOthersAlone(t *testing.T) {
	segs := segments(t, tcpFrame(false, false, 3000, tcpFlagACK), false, 1000)
	syn := bytes.Clone(segs[1])
	syn[34+13] = 0x12
	fin := bytes.Clone(segs[1])
	fin[34+13] = 0x11
	ce := bytes.Clone(segs[1])
	ce[15] |= 3
	ids := bytes.Clone(segs[1])
	binary.BigEndian.PutUint16(ids[18:], 7)
	for name, f := range map[string][]byte{"SYN": syn, "FIN": fin, "CE": ce, "IPv4 ID out of step": ids} {
		c, out := collect(MaxSuperFrameTest)
		c.Add(segs[0], Meta{Flags: DataValid})
		c.Add(f, Meta{Flags: DataValid})
		c.Flush()
		if len(*out) != 2 || !bytes.Equal((*out)[1].frame, f) || !bytes.Equal((*out)[0].frame, segs[0]) {
			t.Errorf("%s: joined or changed (%d frames out)", name, len(*out))
		}
	}
}

// The limit holds: no super-frame over Max, nor an IP packet over 64 KiB.
func TestCoalesceLimit(t *testing.T) {
	segs := segments(t, tcpFrame(false, false, 20000, tcpFlagACK), false, 1000)
	c, out := collect(5000)
	for _, s := range segs {
		c.Add(s, Meta{Flags: DataValid})
	}
	c.Flush()
	total := 0
	for _, e := range *out {
		if len(e.frame) > 5000 {
			t.Fatalf("a %d-byte frame, over the 5000-byte limit", len(e.frame))
		}
		total += len(e.frame) - 54
	}
	if total != 20000 {
		t.Fatalf("%d payload bytes out, want 20000", total)
	}
}

func FuzzCoalesce(f *testing.F) {
	seg := tcpFrame(false, false, 1000, tcpFlagACK)
	f.Add(seg, seg, uint8(DataValid), uint8(DataValid), uint16(4000))
	s6 := tcpFrame(true, true, 500, tcpFlagACK|tcpFlagPSH)
	f.Add(s6, s6, uint8(NeedsCsum), uint8(0), uint16(65535))
	f.Fuzz(func(t *testing.T, a, b []byte, fa, fb uint8, max uint16) {
		limit := int(max)
		var out []emitted
		c := NewCoalescer(make([]byte, limit), func(fr []byte, m Meta) { out = append(out, emitted{bytes.Clone(fr), m}) })
		in := [][]byte{a, b, a, b}
		ms := []Meta{{Flags: fa, CsumStart: 34, CsumOffset: 16}, {Flags: fb, CsumStart: 54, CsumOffset: 16}}
		total := 0
		for i, fr := range in {
			orig := bytes.Clone(fr)
			c.Add(fr, ms[i%2])
			if !bytes.Equal(fr, orig) {
				t.Fatal("Add wrote to its input")
			}
			total += len(fr)
		}
		c.Flush()
		for _, e := range out {
			if e.meta.Segmented() {
				if len(e.frame) > limit {
					t.Fatalf("a %d-byte super-frame over the %d limit", len(e.frame), limit)
				}
				if l3, _, ok := L3Offset(e.frame); !ok || len(e.frame)-l3 > 0xffff {
					t.Fatal("a super-frame whose IP packet is over 64 KiB")
				}
				if _, ok := PlanSegments(e.meta, e.frame); !ok {
					t.Fatalf("a super-frame Split cannot cut: %+v", e.meta)
				}
			}
		}
	})
}
