// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package gso

import "encoding/binary"

// Coalescer joins runs of TCP segments of one flow back into a super-frame,
// as the kernel's GRO does for a NIC (and wireguard-go's tcpGRO for a TUN):
// the UDP data channel carries a super-frame as path-MTU-sized segments, and
// a receiver that wrote each of them to its TAP paid a system call and a
// pass of its kernel's TCP input per 1.4–9 KB instead of per 64 KiB.
//
// Only segments whose checksums need no checking join: a partial checksum
// (NeedsCsum at the TCP checksum field) or one the sender vouches for
// (DataValid: segments the tunnel's far end cut itself, their checksums
// computed there, and authenticated by the datagram's AEAD on the way).
// Any other frame passes through alone, in order. The merge rules are
// GRO's: same Ethernet and IP header but for length, ID and checksum (IPv4
// IDs counting up by one), same ports, ACK, window and TCP options,
// consecutive sequence numbers, every segment as long as the first but the
// last, no flags but ACK (PSH ends a run), at most MaxSuperFrame bytes and an
// IP length that fits 16 bits. The result carries NeedsCsum and a GSO type,
// so the receiving kernel takes it as one packet and segments it again only
// if it forwards it.
//
// A Coalescer is used by one goroutine; Emit's slice is valid only during
// the call. A run is built in the buffer given to NewCoalescer, so a caller
// that writes frames behind a header of its own (a TAP's virtio_net_hdr) can
// give a slice of its write buffer and write an emitted run from where it
// lies; frames that join nothing are emitted from where Add got them.
type Coalescer struct {
	// Emit receives every frame, joined or not, in order.
	Emit func(frame []byte, m Meta)
	// Max is the longest super-frame built: the buffer's length.
	Max int

	mem  []byte // the buffer runs are built in
	buf  []byte // the run so far (mem[:n]): the first segment's headers and every payload
	segs int    // segments in the run; 0: none held
	meta Meta   // the first segment's own metadata, for a run of one
	l3   int
	l4   int
	hdr  int
	v4   bool
	mss  int
	seq  uint32 // the next sequence number that joins
	id   uint16 // the next IPv4 ID that joins
	done bool   // the run can take no more (a short or PSH segment)
}

const (
	tcpFlagACK = 0x10
	// tcpFlagsJoin are the flags a segment that joins a run may have.
	tcpFlagsJoin = tcpFlagACK | tcpFlagPSH
)

// NewCoalescer builds super-frames of at most len(buf) bytes in buf for emit.
func NewCoalescer(buf []byte, emit func([]byte, Meta)) *Coalescer {
	return &Coalescer{Emit: emit, Max: len(buf), mem: buf, buf: buf[:0]}
}

// SetBuf makes buf the buffer the next run is built in. Call it only while
// no run is held: from Emit, for the run just emitted, or after Flush.
func (c *Coalescer) SetBuf(buf []byte) {
	c.mem, c.buf, c.Max = buf, buf[:0], len(buf)
}

// Add takes the next frame. frame is not kept: what joins a run is copied.
func (c *Coalescer) Add(frame []byte, m Meta) {
	l3, l4, hdr, v4, ok := joinable(frame, m)
	if !ok || len(frame) > c.Max {
		c.Flush()
		c.Emit(frame, m)
		return
	}
	if c.segs > 0 && !c.done && c.fits(frame, l3, l4, hdr, v4) {
		c.buf = c.mem[:len(c.buf)+copy(c.mem[len(c.buf):], frame[hdr:])]
		c.segs++
		n := len(frame) - hdr
		c.seq += uint32(n)
		c.id++
		if flags := frame[l4+13]; flags&tcpFlagPSH != 0 || n < c.mss {
			c.buf[c.l4+13] |= flags & tcpFlagPSH
			c.done = true
		}
		return
	}
	c.Flush()
	c.buf = c.mem[:copy(c.mem, frame)]
	c.segs, c.meta = 1, m
	c.l3, c.l4, c.hdr, c.v4 = l3, l4, hdr, v4
	c.mss = len(frame) - hdr
	c.seq = binary.BigEndian.Uint32(frame[l4+4:]) + uint32(c.mss)
	if v4 {
		c.id = binary.BigEndian.Uint16(frame[l3+4:]) + 1
	}
	c.done = frame[l4+13]&tcpFlagPSH != 0
}

// fits reports whether a joinable segment continues the run.
func (c *Coalescer) fits(f []byte, l3, l4, hdr int, v4 bool) bool {
	n := len(f) - hdr
	b := c.buf
	switch {
	case l3 != c.l3 || l4 != c.l4 || hdr != c.hdr || v4 != c.v4,
		n > c.mss,
		len(b)+n > c.Max,
		len(b)+n-c.l3 > 0xffff,
		binary.BigEndian.Uint32(f[l4+4:]) != c.seq:
		return false
	}
	// Ethernet header (and VLAN tag) alike.
	if string(f[:l3]) != string(b[:l3]) {
		return false
	}
	if v4 {
		// Version, IHL, TOS; flags and fragment offset, TTL, protocol;
		// addresses. Not the length (2:4), the ID (4:6) or the checksum.
		if f[l3+1] != b[l3+1] || string(f[l3+6:l3+10]) != string(b[l3+6:l3+10]) ||
			string(f[l3+12:l4]) != string(b[l3+12:l4]) ||
			binary.BigEndian.Uint16(f[l3+4:]) != c.id {
			return false
		}
	} else if string(f[l3:l3+4]) != string(b[l3:l3+4]) || string(f[l3+6:l4]) != string(b[l3+6:l4]) {
		return false // version, class, flow label; next header, hop limit, addresses
	}
	// Ports; acknowledgement; data offset, flags but PSH, window; options.
	// The run's first segment has no PSH (or the run would be done).
	return string(f[l4:l4+4]) == string(b[l4:l4+4]) &&
		string(f[l4+8:l4+13]) == string(b[l4+8:l4+13]) &&
		f[l4+13]&^tcpFlagPSH == b[l4+13] &&
		string(f[l4+14:l4+16]) == string(b[l4+14:l4+16]) &&
		string(f[l4+20:hdr]) == string(b[l4+20:hdr])
}

// Flush emits the run held, if any: call it at the end of each batch, so no
// frame waits for the next one.
func (c *Coalescer) Flush() {
	if c.segs == 0 {
		return
	}
	segs := c.segs
	c.segs = 0
	if segs == 1 {
		c.Emit(c.buf, c.meta)
		return
	}
	b := c.buf
	l4len := len(b) - c.l4
	var sum uint64
	typ := TypeTCPv6
	if c.v4 {
		typ = TypeTCPv4
		ip := b[c.l3:c.l4]
		binary.BigEndian.PutUint16(ip[2:], uint16(len(b)-c.l3))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^CsumFold(CsumAdd(0, ip)))
		sum = CsumAdd(0, ip[12:20])
	} else {
		binary.BigEndian.PutUint16(b[c.l3+4:], uint16(l4len))
		sum = CsumAdd(0, b[c.l3+8:c.l3+40])
	}
	// A partial checksum: the pseudo-header sum only, as the kernel leaves
	// it for a NIC (and FinishChecksum completes).
	binary.BigEndian.PutUint16(b[c.l4+16:], CsumFold(sum+6+uint64(l4len)))
	c.Emit(b, Meta{Flags: NeedsCsum, Type: typ, HdrLen: uint16(c.hdr), Size: uint16(c.mss),
		CsumStart: uint16(c.l4), CsumOffset: 16})
}

// joinable parses a frame that may join a run: a TCP segment (IPv4 without
// options or fragments, or IPv6 without extension headers) with payload,
// only ACK and maybe PSH set, IP length matching the frame, and a checksum
// that needs no checking (see Coalescer).
func joinable(f []byte, m Meta) (l3, l4, hdr int, v4, ok bool) {
	if m.Type != TypeNone {
		return
	}
	l3, et, ok := L3Offset(f)
	if !ok {
		return
	}
	ok = false
	switch et {
	case etherTypeIPv4:
		if len(f) < l3+20+minTCPHeaderLen || f[l3] != 0x45 || f[l3+9] != 6 ||
			binary.BigEndian.Uint16(f[l3+6:])&0x3fff != 0 || // MF or an offset
			int(binary.BigEndian.Uint16(f[l3+2:])) != len(f)-l3 {
			return
		}
		l4, v4 = l3+20, true
	case etherTypeIPv6:
		if len(f) < l3+ipv6HeaderLen+minTCPHeaderLen || f[l3]>>4 != 6 || f[l3+6] != 6 ||
			int(binary.BigEndian.Uint16(f[l3+4:])) != len(f)-l3-ipv6HeaderLen {
			return
		}
		l4 = l3 + ipv6HeaderLen
	default:
		return
	}
	switch {
	case m.Flags == DataValid:
	case m.Flags == NeedsCsum && int(m.CsumStart) == l4 && m.CsumOffset == 16:
	default:
		return
	}
	hdr = l4 + int(f[l4+12]>>4)*4
	if hdr < l4+minTCPHeaderLen || hdr >= len(f) || f[l4+13]&^tcpFlagsJoin != 0 || f[l4+13]&tcpFlagACK == 0 {
		return
	}
	return l3, l4, hdr, v4, true
}
