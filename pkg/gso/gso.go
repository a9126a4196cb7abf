// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package gso is segmentation offload in software: the metadata a Linux TAP or
// packet socket puts before an offloaded frame (struct virtio_net_hdr), checksum
// completion, and the split of a TCP or UDP super-frame into MTU-sized
// segments. The TAP edge, the wire protocol, the member mesh and the LAN bridge
// all carry frames with a Meta beside them; this package is the one place that
// knows what the fields mean, so a super-frame can travel whole from one
// offload-capable edge to another and be cut up only where a port cannot take
// it (an old client, a real LAN with MTU 1500).
package gso

import "encoding/binary"

// VirtioLen is the size of a virtio_net_hdr without num_buffers: what a TAP
// opened with IFF_VNET_HDR, or a packet socket with PACKET_VNET_HDR, puts
// before each frame.
const VirtioLen = 10

// Meta flags (virtio_net_hdr.flags).
const (
	// NeedsCsum: the checksum at CsumStart+CsumOffset holds only the
	// pseudo-header sum; the sum over CsumStart..end is still to be added.
	NeedsCsum uint8 = 1
	// DataValid: the receiver may trust the frame's checksums (already checked).
	DataValid uint8 = 2
)

// Meta types (virtio_net_hdr.gso_type).
const (
	TypeNone  uint8 = 0
	TypeTCPv4 uint8 = 1
	TypeUDP   uint8 = 3 // UFO: IP fragmentation, never produced or accepted here
	TypeTCPv6 uint8 = 4
	TypeUDPL4 uint8 = 5
	TypeECN   uint8 = 0x80 // ORed into a TCP type: the flow uses ECN
)

// Meta is one frame's offload metadata: the fields of a virtio_net_hdr, with
// offsets counted from the start of the Ethernet frame. The zero Meta is an
// ordinary, complete frame.
type Meta struct {
	Flags, Type                         uint8
	HdrLen, Size, CsumStart, CsumOffset uint16
}

// IsZero reports an ordinary frame: no checksum to finish, nothing to split.
func (m Meta) IsZero() bool { return m == Meta{} }

// Segmented reports a super-frame (a GSO type other than none).
func (m Meta) Segmented() bool { return m.Type&^TypeECN != TypeNone }

// ParseVirtio reads a virtio_net_hdr (host byte order, as the kernel writes it).
// b must hold VirtioLen bytes.
func ParseVirtio(b []byte) Meta {
	_ = b[VirtioLen-1]
	return Meta{
		Flags: b[0], Type: b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		Size:       binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// PutVirtio writes m as a virtio_net_hdr into b[:VirtioLen].
func (m Meta) PutVirtio(b []byte) {
	_ = b[VirtioLen-1]
	b[0], b[1] = m.Flags, m.Type
	binary.NativeEndian.PutUint16(b[2:], m.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], m.Size)
	binary.NativeEndian.PutUint16(b[6:], m.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], m.CsumOffset)
}

const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeVLAN   = 0x8100
	tcpFlagFIN      = 0x01
	tcpFlagPSH      = 0x08
	tcpFlagCWR      = 0x80
	ipv6HeaderLen   = 40
	udpHeaderLen    = 8
	minTCPHeaderLen = 20
)

// CsumAdd adds b to a ones'-complement sum of big-endian 16-bit words.
func CsumAdd(sum uint64, b []byte) uint64 {
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

// CsumFold folds a CsumAdd sum into 16 bits.
func CsumFold(sum uint64) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// FinishChecksum completes a checksum the sender left to hardware: the field
// at start+offset holds the pseudo-header sum, and the checksum covers
// everything from start to the end of the frame. It reports false (and
// changes nothing) when the offsets do not fit the frame.
func FinishChecksum(pkt []byte, start, offset int) bool {
	at := start + offset
	if start <= 0 || offset < 0 || at+2 > len(pkt) {
		return false
	}
	c := ^CsumFold(CsumAdd(0, pkt[start:]))
	if c == 0 && offset == 6 { // UDP: 0 means "no checksum"
		c = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[at:], c)
	return true
}

// L3Offset finds the IP header behind the Ethernet (and one 802.1Q) header.
func L3Offset(pkt []byte) (off int, etherType uint16, ok bool) {
	if len(pkt) < 14 {
		return 0, 0, false
	}
	off, etherType = 14, binary.BigEndian.Uint16(pkt[12:])
	if etherType == etherTypeVLAN {
		if len(pkt) < 18 {
			return 0, 0, false
		}
		off, etherType = 18, binary.BigEndian.Uint16(pkt[16:])
	}
	return off, etherType, etherType == etherTypeIPv4 || etherType == etherTypeIPv6
}

// Plan describes how a super-frame splits; PlanSegments makes one.
type Plan struct {
	L3, L4, Hdr int // offsets of the IP header, the TCP/UDP header, the payload
	V4, UDP     bool
	MSS, Segs   int
	// Tagged is free for the caller (the LAN bridge marks a frame whose VLAN
	// tag it restored).
	Tagged bool
	// Partial: Segment leaves each TCP segment's checksum partial (the
	// pseudo-header sum, for NeedsCsum at L4+16), for a receiver whose
	// device or kernel finishes it, instead of summing the payload.
	Partial bool
}

// MaxSegmentLen is the longest segment Segment writes for this plan.
func (s *Plan) MaxSegmentLen() int { return s.Hdr + s.MSS }

// PlanSegments checks a super-frame and says how it splits, or ok=false for a
// frame this package does not split (the caller drops and counts it).
func PlanSegments(m Meta, pkt []byte) (s Plan, ok bool) {
	gt := m.Type &^ TypeECN
	if gt != TypeTCPv4 && gt != TypeTCPv6 && gt != TypeUDPL4 || m.Size == 0 {
		return s, false
	}
	l3, et, ok := L3Offset(pkt)
	if !ok {
		return s, false
	}
	s.L3, s.L4, s.V4, s.UDP, s.MSS = l3, int(m.CsumStart), et == etherTypeIPv4, gt == TypeUDPL4, int(m.Size)
	if s.V4 {
		if len(pkt) < l3+20 || s.L4 != l3+int(pkt[l3]&0x0f)*4 || pkt[l3]>>4 != 4 {
			return s, false
		}
	} else if s.L4 != l3+ipv6HeaderLen || len(pkt) < s.L4 { // no extension headers
		return s, false
	}
	if s.UDP {
		s.Hdr = s.L4 + udpHeaderLen
	} else {
		if len(pkt) < s.L4+minTCPHeaderLen {
			return s, false
		}
		s.Hdr = s.L4 + int(pkt[s.L4+12]>>4)*4
		if s.Hdr < s.L4+minTCPHeaderLen {
			return s, false
		}
	}
	// A segment's IP length field is 16 bits: an MSS that would overflow it
	// (only a forged header has one) cannot be honoured.
	if s.Hdr > len(pkt) || s.Hdr+s.MSS-s.L3 > 0xffff {
		return s, false
	}
	payload := len(pkt) - s.Hdr
	s.Segs = (payload + s.MSS - 1) / s.MSS
	return s, s.Segs > 0
}

// Segment writes segment i of pkt into dst and returns its length (-1 when
// dst is too small). Headers are copied and fixed as the kernel's own
// software segmentation does: IP lengths, IPv4 ID and header checksum, TCP
// sequence number and flags (FIN and PSH on the last segment only, CWR on the
// first only), and the TCP or UDP checksum computed in full.
func Segment(s *Plan, pkt []byte, i int, dst []byte) int {
	start := s.Hdr + i*s.MSS
	end := min(start+s.MSS, len(pkt))
	n := s.Hdr + end - start
	if n > len(dst) || start > len(pkt) {
		return -1
	}
	copy(dst, pkt[:s.Hdr])
	copy(dst[s.Hdr:], pkt[start:end])
	seg := dst[:n]
	l4len := n - s.L4
	if s.V4 {
		ip := seg[s.L3:s.L4]
		binary.BigEndian.PutUint16(ip[2:], uint16(n-s.L3))
		binary.BigEndian.PutUint16(ip[4:], binary.BigEndian.Uint16(pkt[s.L3+4:])+uint16(i))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^CsumFold(CsumAdd(0, ip)))
	} else {
		binary.BigEndian.PutUint16(seg[s.L3+4:], uint16(n-s.L3-ipv6HeaderLen))
	}
	l4 := seg[s.L4:]
	var proto uint64 = 6
	csumAt := 16
	if s.UDP {
		proto, csumAt = 17, 6
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	} else {
		seq := binary.BigEndian.Uint32(pkt[s.L4+4:]) + uint32(i*s.MSS)
		binary.BigEndian.PutUint32(l4[4:], seq)
		if i < s.Segs-1 {
			l4[13] &^= tcpFlagFIN | tcpFlagPSH
		}
		if i > 0 {
			l4[13] &^= tcpFlagCWR
		}
	}
	l4[csumAt], l4[csumAt+1] = 0, 0
	var sum uint64
	if s.V4 {
		sum = CsumAdd(0, seg[s.L3+12:s.L3+20])
	} else {
		sum = CsumAdd(0, seg[s.L3+8:s.L3+40])
	}
	sum += proto + uint64(l4len)
	if s.Partial && !s.UDP {
		binary.BigEndian.PutUint16(l4[csumAt:], CsumFold(sum))
		return n
	}
	c := ^CsumFold(CsumAdd(sum, l4))
	if c == 0 && s.UDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[csumAt:], c)
	return n
}

// Split hands emit the frames an offload frame stands for, as a port without
// offload must receive them: a super-frame segment by segment, a frame with a
// partial checksum completed, any other frame as it is. scratch must hold the
// longest frame emitted (the whole frame for a checksum completion, which is
// done in a copy: pkt may be shared with other ports and is never written).
// emit's slice is valid only during the call. Split reports false, emitting
// nothing, for a frame it cannot split or complete (drop it and count it).
func Split(m Meta, pkt, scratch []byte, emit func([]byte)) bool {
	// An IP packet longer than its 16-bit length field can only be a forged
	// or corrupt frame; no port could take it.
	if l3, _, ok := L3Offset(pkt); ok && len(pkt)-l3 > 0xffff {
		return false
	}
	if m.Segmented() {
		p, ok := PlanSegments(m, pkt)
		if !ok || p.MaxSegmentLen() > len(scratch) {
			return false
		}
		for i := 0; i < p.Segs; i++ {
			n := Segment(&p, pkt, i, scratch)
			if n < 0 {
				return false
			}
			emit(scratch[:n])
		}
		return true
	}
	if m.Flags&NeedsCsum != 0 {
		if len(pkt) > len(scratch) {
			return false
		}
		c := scratch[:copy(scratch, pkt)]
		if !FinishChecksum(c, int(m.CsumStart), int(m.CsumOffset)) {
			return false
		}
		emit(c)
		return true
	}
	emit(pkt)
	return true
}
