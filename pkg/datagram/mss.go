// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"encoding/binary"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// MSS clamping. A TAP's 1500-byte MTU does not fit a 1472-byte datagram
// with the channel's overhead, so the Packer cuts every full-sized TCP
// segment shorter (gso.Split at the datagram's room). The pieces are whole,
// independent frames, but their boundaries no longer fall on the sending
// TCP's: one lost datagram leaves two of the sender's segments incomplete
// (SACK marks only whole segments), so it retransmits both — a 1 % datagram
// loss is about 2 % segment loss for the inner TCP, and the duplicate half
// it resends comes back as a D-SACK, which Linux takes for reordering and
// answers by waiting longer before it declares the next loss.
//
// ClampMSS lowers the MSS option of the TCP SYNs that cross the channel, as
// SoftEther does for its UDP acceleration and as routers do in front of a
// PPPoE link, so the two ends' full-sized segments fit one datagram each:
// one lost datagram is then one lost segment.

// MSSFor is the largest TCP MSS whose full-sized segments fit a datagram of
// size bytes as one plain frame: l3 is the IP header's offset in the frame
// (14, or 18 behind a VLAN tag), v6 its version. Segments carrying TCP
// options are shorter by the options (the MSS counts payload and options).
func MSSFor(size, l3 int, v6 bool) int {
	ip := 20
	if v6 {
		ip = 40
	}
	return room(min(max(size, MinDatagram), MaxDatagram), segmentMeta) - l3 - ip - 20
}

// ClampMSS lowers the MSS option of frame, a TCP SYN (or SYN-ACK) with
// offload metadata m, to MSSFor(size), fixing the checksum when the frame
// carries a complete one (a partial one covers the pseudo-header only,
// which the option is not part of). It reports whether it changed the
// frame; anything but a SYN with a larger MSS option is left alone, cheaply:
// this runs on every frame the channel carries.
func ClampMSS(frame []byte, m gso.Meta, size int) bool {
	if m.Segmented() || len(frame) < 14+20+24 {
		return false // a SYN is never a super-frame, and has an MSS option
	}
	l3, et, ok := gso.L3Offset(frame)
	if !ok {
		return false
	}
	var l4 int
	v6 := et == 0x86dd
	if v6 {
		if len(frame) < l3+40+24 || frame[l3]>>4 != 6 || frame[l3+6] != 6 {
			return false // not TCP, or behind extension headers
		}
		l4 = l3 + 40
	} else {
		if frame[l3]>>4 != 4 || frame[l3+9] != 6 {
			return false
		}
		ihl := int(frame[l3]&0x0f) * 4
		// Not a fragment (a SYN never is one; an offset one has no header).
		if ihl < 20 || binary.BigEndian.Uint16(frame[l3+6:])&0x1fff != 0 {
			return false
		}
		l4 = l3 + ihl
	}
	if len(frame) < l4+20 || frame[l4+13]&0x02 == 0 { // SYN
		return false
	}
	end := l4 + int(frame[l4+12]>>4)*4
	if end > len(frame) || end < l4+20 {
		return false
	}
	mss := MSSFor(size, l3, v6)
	if mss <= 0 {
		return false
	}
	for o := l4 + 20; o < end; {
		switch frame[o] {
		case 0: // end of options
			return false
		case 1: // no-op
			o++
			continue
		}
		if o+1 >= end || frame[o+1] < 2 || o+int(frame[o+1]) > end {
			return false
		}
		if frame[o] != 2 || frame[o+1] != 4 {
			o += int(frame[o+1])
			continue
		}
		old := binary.BigEndian.Uint16(frame[o+2:])
		if int(old) <= mss {
			return false
		}
		csumOff := l4 + 16
		complete := m.Flags&gso.NeedsCsum == 0
		// The 16-bit words of the checksum are aligned to the TCP header;
		// the option's value may straddle two of them.
		w := l4 + (o+2-l4)&^1
		wEnd := l4 + (o+5-l4)&^1
		var before uint64
		if complete {
			before = gso.CsumAdd(0, frame[w:wEnd])
		}
		binary.BigEndian.PutUint16(frame[o+2:], uint16(mss))
		if complete {
			// RFC 1624: HC' = ~(~HC + ~m + m').
			after := gso.CsumAdd(0, frame[w:wEnd])
			hc := binary.BigEndian.Uint16(frame[csumOff:])
			sum := uint64(^hc) + uint64(^gso.CsumFold(before)) + uint64(gso.CsumFold(after))
			binary.BigEndian.PutUint16(frame[csumOff:], ^gso.CsumFold(sum))
		}
		return true
	}
	return false
}
