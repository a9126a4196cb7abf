// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package testutil

import (
	"encoding/binary"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// TCPSuperFrame builds a TCP segment from src to dst as a sender with
// segmentation offload hands it over: one IP packet (IPv4, or IPv6 with v6)
// carrying n payload bytes, behind an 802.1Q tag (VLAN 100) with vlan; the
// TCP checksum field holds only the pseudo-header sum, and the metadata says
// how to finish it and, with mss > 0, how to cut it into mss-byte segments
// (mss 0: one frame whose checksum is left to finish). The tests of the
// protocol, the member, the mesh and the LAN bridge build their super-frames
// here; pkg/gso's own tests keep theirs (they cannot import this package).
func TCPSuperFrame(dst, src [6]byte, v6, vlan bool, n int, mss uint16) ([]byte, gso.Meta) {
	l3 := 14
	if vlan {
		l3 = 18
	}
	ipLen := 20
	if v6 {
		ipLen = 40
	}
	f := make([]byte, l3+ipLen+20+n)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	et := f[12:]
	if vlan {
		binary.BigEndian.PutUint16(f[12:], 0x8100)
		binary.BigEndian.PutUint16(f[14:], 100)
		et = f[16:]
	}
	ip := f[l3:]
	var pseudo uint64
	if v6 {
		binary.BigEndian.PutUint16(et, 0x86dd)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(20+n))
		ip[6], ip[7] = 6, 64
		ip[23], ip[39] = 1, 2
		pseudo = gso.CsumAdd(0, ip[8:40])
	} else {
		binary.BigEndian.PutUint16(et, 0x0800)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(min(20+20+n, 0xffff)))
		binary.BigEndian.PutUint16(ip[4:], 1000)
		ip[8], ip[9] = 64, 6
		copy(ip[12:20], []byte{198, 18, 0, 1, 198, 18, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], ^gso.CsumFold(gso.CsumAdd(0, ip[:20])))
		pseudo = gso.CsumAdd(0, ip[12:20])
	}
	tcp := f[l3+ipLen:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], 0x10000)
	tcp[12] = 5 << 4
	tcp[13] = 0x18 // ACK PSH
	for i := range n {
		tcp[20+i] = byte(i*31 + 7)
	}
	binary.BigEndian.PutUint16(tcp[16:], gso.CsumFold(pseudo+6+uint64(20+n)))
	m := gso.Meta{Flags: gso.NeedsCsum, CsumStart: uint16(l3 + ipLen), CsumOffset: 16}
	if mss > 0 {
		m.HdrLen, m.Size, m.Type = uint16(l3+ipLen+20), mss, gso.TypeTCPv4
		if v6 {
			m.Type = gso.TypeTCPv6
		}
	}
	return f, m
}
