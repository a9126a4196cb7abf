// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// synFrame is a TCP SYN with options opts (padded to a multiple of 4) and a
// complete checksum, or the pseudo-header sum with partial.
func synFrame(v6, vlan, partial bool, opts []byte) ([]byte, gso.Meta) {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	f, _ := testutil.TCPSuperFrame([6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, v6, vlan, len(opts), 0)
	l3, _, _ := gso.L3Offset(f)
	l4 := l3 + 20
	if v6 {
		l4 = l3 + 40
	}
	// The options become the TCP header's, no payload.
	copy(f[l4+20:], opts)
	f[l4+12] = byte(5+len(opts)/4) << 4
	f[l4+13] = 0x02 // SYN
	var pseudo uint64
	if v6 {
		pseudo = gso.CsumAdd(0, f[l3+8:l3+40])
	} else {
		pseudo = gso.CsumAdd(0, f[l3+12:l3+20])
	}
	pseudo += 6 + uint64(len(f)-l4)
	binary.BigEndian.PutUint16(f[l4+16:], 0)
	m := gso.Meta{Flags: gso.NeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}
	if partial {
		binary.BigEndian.PutUint16(f[l4+16:], gso.CsumFold(pseudo))
		return f, m
	}
	binary.BigEndian.PutUint16(f[l4+16:], ^gso.CsumFold(gso.CsumAdd(pseudo, f[l4:])))
	return f, gso.Meta{}
}

func mssOf(f []byte) int {
	i := bytes.Index(f, []byte{2, 4})
	return int(binary.BigEndian.Uint16(f[i+2:]))
}

func TestClampMSS(t *testing.T) {
	mss1460 := []byte{2, 4, 0x05, 0xb4}
	for _, v6 := range []bool{false, true} {
		for _, vlan := range []bool{false, true} {
			for _, partial := range []bool{false, true} {
				for name, opts := range map[string][]byte{
					"first":      append(bytes.Clone(mss1460), 1, 3, 3, 7),
					"odd offset": append([]byte{1}, append(bytes.Clone(mss1460), 4, 2, 1)...), // NOP, MSS, SACK-permitted, NOP
					"last":       {1, 1, 4, 2, 2, 4, 0x05, 0xb4},
				} {
					f, m := synFrame(v6, vlan, partial, opts)
					before := bytes.Clone(f)
					l3, _, _ := gso.L3Offset(f)
					want := MSSFor(1472, l3, v6)
					if !ClampMSS(f, m, 1472) {
						t.Fatalf("v6=%v vlan=%v partial=%v %s: not clamped", v6, vlan, partial, name)
					}
					if got := mssOf(f); got != want {
						t.Fatalf("%s: MSS %d, want %d", name, got, want)
					}
					// A full-sized segment at that MSS fills one datagram.
					// (with the partial-checksum metadata a segment cut for
					// a peer with offloads carries).
					if frame := l3 + map[bool]int{false: 20, true: 40}[v6] + 20 + want; frame != room(1472, segmentMeta) {
						t.Fatalf("a full segment is a %d-byte frame; the datagram's room is %d", frame, room(1472, segmentMeta))
					}
					if partial {
						l4 := len(f) - len(opts) - 20
						if !bytes.Equal(f[l4+16:l4+18], before[l4+16:l4+18]) {
							t.Fatalf("%s: a partial checksum changed", name)
						}
					} else if !tcpChecksumOK(f, l3, v6) {
						t.Fatalf("v6=%v vlan=%v %s: checksum wrong after clamping", v6, vlan, name)
					}
					// Clamped already: nothing to do.
					if ClampMSS(f, m, 1472) {
						t.Fatalf("%s: clamped twice", name)
					}
				}
			}
		}
	}
}

func TestClampMSSLeavesOthersAlone(t *testing.T) {
	small, _ := synFrame(false, false, false, []byte{2, 4, 0x04, 0x00}) // MSS 1024
	noMSS, _ := synFrame(false, false, false, []byte{1, 1, 4, 2})
	ack, _ := synFrame(false, false, false, []byte{2, 4, 0x05, 0xb4})
	ack[14+20+13] = 0x10
	udp, _ := synFrame(false, false, false, []byte{2, 4, 0x05, 0xb4})
	udp[14+9] = 17
	super, sm := testutil.TCPSuperFrame([6]byte{2}, [6]byte{4}, false, false, 60000, 1448)
	for name, f := range map[string][]byte{"small MSS": small, "no MSS": noMSS, "ACK": ack, "UDP": udp, "short": ack[:40]} {
		before := bytes.Clone(f)
		if ClampMSS(f, gso.Meta{}, 1472) || !bytes.Equal(f, before) {
			t.Fatalf("%s: changed", name)
		}
	}
	if ClampMSS(super, sm, 1472) {
		t.Fatal("a super-frame changed")
	}
	if got := testing.AllocsPerRun(100, func() { ClampMSS(ack, gso.Meta{}, 1472) }); got != 0 {
		t.Fatalf("%v allocations", got)
	}
}

// segRanges are the TCP sequence ranges of frames (TCPSuperFrame's TCP
// header has no options).
func segRanges(t *testing.T, frames [][]byte) [][2]uint32 {
	t.Helper()
	var r [][2]uint32
	for _, f := range frames {
		l3, _, _ := gso.L3Offset(f)
		if !tcpChecksumOK(f, l3, false) {
			t.Fatal("a frame's TCP checksum is wrong")
		}
		seq := binary.BigEndian.Uint32(f[l3+20+4:])
		r = append(r, [2]uint32{seq, seq + uint32(len(f)-l3-40)})
	}
	return r
}

// A TCP super-frame crosses the datagram path as independent, complete
// segments, one per datagram: a lost datagram costs the receiver one
// segment and nothing else. With the segment size a clamped MSS gives, the
// lost range is exactly one of the sender's segments; with a 1500-byte
// MTU's (1460) the cut falls inside the sender's segments, so most lost
// datagrams leave two of them incomplete — what ClampMSS is for.
func TestSuperFrameLosesOneSegmentPerDatagram(t *testing.T) {
	const size = 1472
	aligned := uint16(MSSFor(size, 14, false))
	for _, c := range []struct {
		mss        uint16
		maxTouched int
	}{{aligned, 1}, {1460, 2}} {
		s, o := pair(t, AES256GCM, "k", "k")
		p := NewPacker(s, 1600, true, nil)
		const n = 40
		super, sm := testutil.TCPSuperFrame([6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, false, false, n*int(c.mss), c.mss)
		// Every datagram on its own, so one can be lost.
		var dgrams [][]byte
		p.Flush = func(ds [][]byte) error {
			for _, d := range ds {
				dgrams = append(dgrams, bytes.Clone(d))
			}
			return nil
		}
		if err := p.Pack(size, [][]byte{super}, []gso.Meta{sm}, nil); err != nil {
			t.Fatal(err)
		}
		per := make([][][]byte, len(dgrams)) // each datagram's frames
		for i, d := range dgrams {
			_, pl, err := o.Open(d)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Unpack(pl, framing.Limits{MaxFrame: 1600}, func(f []byte, m gso.Meta) {
				if m != (gso.Meta{Flags: gso.NeedsCsum, CsumStart: 34, CsumOffset: 16}) {
					t.Fatalf("a segment with metadata %+v, want a partial checksum at the TCP header", m)
				}
				f = bytes.Clone(f)
				gso.FinishChecksum(f, int(m.CsumStart), int(m.CsumOffset)) // as the receiver's device does
				per[i] = append(per[i], f)
			}); err != nil {
				t.Fatal(err)
			}
		}
		base := binary.BigEndian.Uint32(super[14+20+4:])
		touchedTwo := 0
		for lost := range dgrams {
			var got [][]byte
			for i := range per {
				if i != lost {
					got = append(got, per[i]...)
				}
			}
			r := segRanges(t, got)
			// The received ranges are contiguous but for one hole.
			var hole [2]uint32
			next := base
			for _, x := range r {
				if x[0] != next {
					if hole != ([2]uint32{}) {
						t.Fatalf("mss %d: two holes losing datagram %d", c.mss, lost)
					}
					hole = [2]uint32{next, x[0]}
				}
				next = x[1]
			}
			if end := base + uint32(n)*uint32(c.mss); next != end {
				hole = [2]uint32{next, end}
			}
			if hole == ([2]uint32{}) {
				t.Fatalf("mss %d: losing datagram %d lost nothing", c.mss, lost)
			}
			// The sender's segments the hole touches.
			first := (hole[0] - base) / uint32(c.mss)
			last := (hole[1] - 1 - base) / uint32(c.mss)
			touched := int(last-first) + 1
			if touched > c.maxTouched {
				t.Fatalf("mss %d: losing datagram %d leaves %d sender segments incomplete", c.mss, lost, touched)
			}
			if touched == 2 {
				touchedTwo++
			}
		}
		if c.mss == aligned && len(dgrams) != n {
			t.Fatalf("%d datagrams for %d segments", len(dgrams), n)
		}
		if c.mss == 1460 && touchedTwo < len(dgrams)/2 {
			t.Fatalf("unaligned: only %d of %d lost datagrams touch two segments", touchedTwo, len(dgrams))
		}
	}
}

// ClampMSS takes any bytes (frames from a TAP or a peer's datagrams) without
// panicking, and changes at most the MSS option's value and the checksum.
func FuzzClampMSS(f *testing.F) {
	syn, _ := synFrame(false, true, false, []byte{1, 2, 4, 0x05, 0xb4, 4, 2, 1})
	syn6, _ := synFrame(true, false, true, []byte{2, 4, 0x05, 0xb4})
	f.Add(syn, false, 1472)
	f.Add(syn6, true, 1300)
	f.Fuzz(func(t *testing.T, frame []byte, partial bool, size int) {
		var m gso.Meta
		if partial {
			m.Flags = gso.NeedsCsum
		}
		before := bytes.Clone(frame)
		changed := ClampMSS(frame, m, size)
		diff := 0
		for i := range frame {
			if frame[i] != before[i] {
				diff++
			}
		}
		if !changed && diff != 0 || diff > 4 {
			t.Fatalf("changed=%v, %d bytes differ", changed, diff)
		}
	})
}
