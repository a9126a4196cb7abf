// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package gso

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// tcpFrame builds an Ethernet/IP/TCP frame with payload n bytes, as a local
// sender hands it to a device with segmentation offload: the TCP checksum
// field holds only the pseudo-header sum. vlan inserts an 802.1Q tag.
func tcpFrame(v6, vlan bool, n int, flags byte) []byte {
	l3 := 14
	if vlan {
		l3 = 18
	}
	ipLen := 20
	if v6 {
		ipLen = 40
	}
	f := make([]byte, l3+ipLen+20+n)
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 2})
	et := f[12:]
	if vlan {
		binary.BigEndian.PutUint16(f[12:], etherTypeVLAN)
		binary.BigEndian.PutUint16(f[14:], 0x2064) // priority 1, VLAN 100
		et = f[16:]
	}
	ip := f[l3:]
	if v6 {
		binary.BigEndian.PutUint16(et, etherTypeIPv6)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(20+n))
		ip[6], ip[7] = 6, 64
		ip[23], ip[39] = 1, 2
	} else {
		binary.BigEndian.PutUint16(et, etherTypeIPv4)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(min(20+20+n, 0xffff)))
		binary.BigEndian.PutUint16(ip[4:], 1000)
		ip[8], ip[9] = 64, 6
		copy(ip[12:20], []byte{198, 18, 0, 1, 198, 18, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], ^CsumFold(CsumAdd(0, ip[:20])))
	}
	tcp := f[l3+ipLen:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 7)
	binary.BigEndian.PutUint32(tcp[4:], 0xfffff000) // wraps within the frame
	tcp[12] = 5 << 4
	tcp[13] = flags
	for i := range n {
		tcp[20+i] = byte(i*31 + 7)
	}
	return f
}

// valid checks the IP header checksum (IPv4) and the TCP checksum of a frame
// whose IP header starts at l3.
func valid(t *testing.T, f []byte, l3 int, v6 bool) {
	t.Helper()
	ipLen := 20
	var sum uint64
	if v6 {
		ipLen = 40
		sum = CsumAdd(0, f[l3+8:l3+40])
	} else {
		if c := CsumFold(CsumAdd(0, f[l3:l3+20])); c != 0xffff {
			t.Fatalf("IPv4 header checksum wrong (%#x)", c)
		}
		if got := int(binary.BigEndian.Uint16(f[l3+2:])); got != len(f)-l3 {
			t.Fatalf("IPv4 total length %d, frame holds %d", got, len(f)-l3)
		}
		sum = CsumAdd(0, f[l3+12:l3+20])
	}
	tcp := f[l3+ipLen:]
	sum += 6 + uint64(len(tcp))
	if c := CsumFold(CsumAdd(sum, tcp)); c != 0xffff {
		t.Fatalf("TCP checksum wrong (%#x)", c)
	}
}

func TestSegmentTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := tcpFrame(v6, false, 2500, tcpFlagFIN|tcpFlagPSH|tcpFlagCWR|0x10)
		gt := TypeTCPv4
		ipLen := 20
		if v6 {
			gt, ipLen = TypeTCPv6, 40
		}
		m := Meta{Flags: NeedsCsum, Type: gt, Size: 1000, CsumStart: uint16(14 + ipLen), CsumOffset: 16}
		s, ok := PlanSegments(m, f)
		if !ok || s.Segs != 3 {
			t.Fatalf("v6=%v: plan %+v ok %v, want 3 segments", v6, s, ok)
		}
		var payload []byte
		for i := range s.Segs {
			dst := make([]byte, 2048)
			n := Segment(&s, f, i, dst)
			seg := dst[:n]
			valid(t, seg, 14, v6)
			tcp := seg[14+ipLen:]
			if seq := binary.BigEndian.Uint32(tcp[4:]); seq != 0xfffff000+uint32(i*1000) {
				t.Errorf("segment %d seq %#x", i, seq)
			}
			last := i == s.Segs-1
			if (tcp[13]&tcpFlagFIN != 0) != last || (tcp[13]&tcpFlagPSH != 0) != last || (tcp[13]&tcpFlagCWR != 0) != (i == 0) {
				t.Errorf("segment %d flags %#x", i, tcp[13])
			}
			if !v6 && binary.BigEndian.Uint16(seg[14+4:]) != 1000+uint16(i) {
				t.Errorf("segment %d IPv4 ID %d", i, binary.BigEndian.Uint16(seg[14+4:]))
			}
			payload = append(payload, tcp[20:]...)
		}
		if string(payload) != string(f[14+ipLen+20:]) {
			t.Errorf("v6=%v: the segments' payloads do not add up to the frame's", v6)
		}
		if n := Segment(&s, f, 0, make([]byte, 100)); n != -1 {
			t.Errorf("Segment into a short buffer returned %d, want -1", n)
		}
	}
}

// A super-frame from a VLAN keeps its tag on every segment: the tag sits
// between the MAC addresses and the IP header, which Segment copies whole.
func TestSplitVLANTaggedSuperFrame(t *testing.T) {
	f := tcpFrame(false, true, 60000, 0x18)
	orig := bytes.Clone(f)
	m := Meta{Flags: NeedsCsum, Type: TypeTCPv4, HdrLen: 18 + 40, Size: 1448, CsumStart: 18 + 20, CsumOffset: 16}
	scratch := make([]byte, 1600)
	var segs int
	var payload []byte
	ok := Split(m, f, scratch, func(seg []byte) {
		segs++
		if len(seg) > 18+40+1448 {
			t.Fatalf("segment %d is %d bytes, longer than headers and MSS", segs, len(seg))
		}
		if binary.BigEndian.Uint16(seg[12:]) != etherTypeVLAN || binary.BigEndian.Uint16(seg[14:]) != 0x2064 || binary.BigEndian.Uint16(seg[16:]) != etherTypeIPv4 {
			t.Fatalf("segment %d lost its 802.1Q tag: % x", segs, seg[12:18])
		}
		valid(t, seg, 18, false)
		payload = append(payload, seg[18+40:]...)
	})
	if !ok || segs != (60000+1447)/1448 {
		t.Fatalf("Split = %v with %d segments, want %d", ok, segs, (60000+1447)/1448)
	}
	if !bytes.Equal(payload, f[18+40:]) {
		t.Error("the segments' payloads do not add up to the super-frame's")
	}
	if !bytes.Equal(f, orig) {
		t.Error("Split changed the frame it split (it may be shared with other ports)")
	}
}

func TestSplitPassesPlainAndCompletesChecksum(t *testing.T) {
	f := tcpFrame(false, false, 300, 0x18)
	var got [][]byte
	emit := func(b []byte) { got = append(got, bytes.Clone(b)) }
	if !Split(Meta{}, f, nil, emit) || len(got) != 1 || !bytes.Equal(got[0], f) {
		t.Fatal("Split changed or dropped an ordinary frame")
	}
	tcp := f[34:]
	ps := CsumAdd(0, f[26:34]) + 6 + uint64(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], CsumFold(ps))
	got = nil
	if !Split(Meta{Flags: NeedsCsum, CsumStart: 34, CsumOffset: 16}, f, make([]byte, 2048), emit) || len(got) != 1 {
		t.Fatal("Split refused a frame with a partial checksum")
	}
	valid(t, got[0], 14, false)
	if Split(Meta{Flags: NeedsCsum, CsumStart: 34, CsumOffset: 16}, f, make([]byte, 100), emit) {
		t.Error("Split completed a checksum in a scratch buffer shorter than the frame")
	}
}

func TestFinishChecksum(t *testing.T) {
	f := tcpFrame(false, false, 300, 0x18)
	tcp := f[34:]
	// What a sender with checksum offload leaves: the pseudo-header sum.
	ps := CsumAdd(0, f[26:34]) + 6 + uint64(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], CsumFold(ps))
	if !FinishChecksum(f, 34, 16) {
		t.Fatal("FinishChecksum refused a good frame")
	}
	valid(t, f, 14, false)
	if FinishChecksum(f, 34, len(f)) {
		t.Error("FinishChecksum accepted an offset beyond the frame")
	}
}

func TestPlanRefuses(t *testing.T) {
	f := tcpFrame(false, false, 100, 0)
	for _, m := range []Meta{
		{Type: TypeUDP, Size: 50, CsumStart: 34},        // UFO
		{Type: TypeTCPv4, Size: 0, CsumStart: 34},       // no MSS
		{Type: TypeTCPv4, Size: 50, CsumStart: 40},      // transport not after the IP header
		{Type: TypeTCPv6, Size: 50, CsumStart: 14 + 40}, // IPv4 frame called IPv6
	} {
		if _, ok := PlanSegments(m, f); ok {
			t.Errorf("PlanSegments accepted %+v", m)
		}
	}
}

func TestVirtioRoundTrip(t *testing.T) {
	m := Meta{Flags: NeedsCsum, Type: TypeTCPv6 | TypeECN, HdrLen: 74, Size: 1440, CsumStart: 54, CsumOffset: 16}
	var b [VirtioLen]byte
	m.PutVirtio(b[:])
	if got := ParseVirtio(b[:]); got != m || !got.Segmented() || got.IsZero() {
		t.Fatalf("ParseVirtio(PutVirtio(%+v)) = %+v", m, got)
	}
}

// FuzzSplit: whatever the metadata and the bytes (a TAP or packet socket
// hands both over from another host's or process's traffic), Split never
// panics, never emits more than its scratch buffer holds, never emits an IP
// packet over the 16-bit length limit, and never writes to the frame.
func FuzzSplit(f *testing.F) {
	seed := func(m Meta, pkt []byte) {
		var h [VirtioLen]byte
		m.PutVirtio(h[:])
		f.Add(h[:], pkt, uint16(1600))
	}
	seed(Meta{Flags: NeedsCsum, Type: TypeTCPv4, Size: 1448, CsumStart: 34, CsumOffset: 16}, tcpFrame(false, false, 5000, 0x19))
	seed(Meta{Flags: NeedsCsum, Type: TypeTCPv6, Size: 1000, CsumStart: 54, CsumOffset: 16}, tcpFrame(true, false, 3000, 0x10))
	seed(Meta{Flags: NeedsCsum, Type: TypeTCPv4, Size: 1448, CsumStart: 38, CsumOffset: 16}, tcpFrame(false, true, 4000, 0x10))
	seed(Meta{Flags: NeedsCsum, Type: TypeUDPL4, Size: 1200, CsumStart: 34, CsumOffset: 6}, tcpFrame(false, false, 3000, 0))
	seed(Meta{Flags: NeedsCsum, CsumStart: 34, CsumOffset: 16}, tcpFrame(false, false, 100, 0))
	f.Fuzz(func(t *testing.T, hdr, pkt []byte, scratchLen uint16) {
		if len(hdr) < VirtioLen {
			return
		}
		m := ParseVirtio(hdr)
		orig := bytes.Clone(pkt)
		scratch := make([]byte, int(scratchLen))
		Split(m, pkt, scratch, func(seg []byte) {
			if m.Segmented() || m.Flags&NeedsCsum != 0 {
				if len(seg) > len(scratch) {
					t.Fatalf("emitted %d bytes from a %d-byte scratch buffer", len(seg), len(scratch))
				}
			}
			if l3, et, ok := L3Offset(seg); ok && len(seg)-l3 > 0xffff {
				t.Fatalf("emitted an IP packet of %d bytes (ethertype %#x), over the 16-bit limit", len(seg)-l3, et)
			}
		})
		if !bytes.Equal(pkt, orig) {
			t.Fatal("Split wrote to the frame")
		}
	})
}
