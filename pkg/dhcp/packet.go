// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"encoding/binary"
	"net/netip"
)

// Ports, EtherTypes and addresses of the frames DHCP and ARP travel in.
const (
	ServerPort = 67
	ClientPort = 68

	etherIPv4 = 0x0800
	etherARP  = 0x0806
	ethLen    = 14
	ipLen     = 20 // the header this package writes; it reads any IHL
	udpLen    = 8
	arpLen    = 28
	protoUDP  = 17
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IPv4 broadcast and unspecified addresses.
var (
	IPBroadcast   = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	IPUnspecified = netip.AddrFrom4([4]byte{})
)

// UDP is one Ethernet/IPv4/UDP datagram. Payload aliases the frame it was
// parsed from.
type UDP struct {
	SrcMAC, DstMAC   [6]byte
	SrcIP, DstIP     netip.Addr
	SrcPort, DstPort uint16
	Payload          []byte
}

// ParseUDP reads an untagged Ethernet frame carrying an unfragmented
// IPv4/UDP datagram. Checksums are not verified: the frame crossed a
// virtual switch, not a wire, and the DHCP decoder checks what it reads.
func ParseUDP(f []byte) (UDP, bool) {
	var u UDP
	if len(f) < ethLen+ipLen+udpLen || binary.BigEndian.Uint16(f[12:]) != etherIPv4 {
		return u, false
	}
	ip := f[ethLen:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ihl < ipLen || total < ihl+udpLen || total > len(ip) || ip[9] != protoUDP {
		return u, false
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // more fragments, or an offset
		return u, false
	}
	udp := ip[ihl:total]
	n := int(binary.BigEndian.Uint16(udp[4:]))
	if n < udpLen || n > len(udp) {
		return u, false
	}
	copy(u.DstMAC[:], f[0:6])
	copy(u.SrcMAC[:], f[6:12])
	u.SrcIP, u.DstIP = addr4(ip[12:]), addr4(ip[16:])
	u.SrcPort, u.DstPort = binary.BigEndian.Uint16(udp[0:]), binary.BigEndian.Uint16(udp[2:])
	u.Payload = udp[udpLen:n]
	return u, true
}

// AppendUDP appends u as an Ethernet frame, with the IPv4 header checksum
// and the UDP checksum filled in: raw-socket DHCP clients (udhcpc) verify it.
func AppendUDP(b []byte, u UDP) []byte {
	b = append(b, u.DstMAC[:]...)
	b = append(b, u.SrcMAC[:]...)
	b = binary.BigEndian.AppendUint16(b, etherIPv4)
	ipStart := len(b)
	total := ipLen + udpLen + len(u.Payload)
	src, dst := as4(u.SrcIP), as4(u.DstIP)
	b = append(b, 0x45, 0x10) // IHL 5; TOS low delay, as ISC dhcpd sends
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0, 0, 64, protoUDP, 0, 0)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(b[ipStart+10:], ^fold(sum(b[ipStart:ipStart+ipLen], 0)))
	udpStart := len(b)
	b = binary.BigEndian.AppendUint16(b, u.SrcPort)
	b = binary.BigEndian.AppendUint16(b, u.DstPort)
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen+len(u.Payload)))
	b = append(b, 0, 0)
	b = append(b, u.Payload...)
	// Pseudo-header: addresses, protocol and UDP length.
	s := sum(src[:], 0)
	s = sum(dst[:], s)
	s += protoUDP + uint32(udpLen+len(u.Payload))
	c := ^fold(sum(b[udpStart:], s))
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(b[udpStart+6:], c)
	return b
}

func sum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is an Ethernet/IPv4 ARP packet and the Ethernet addresses of its frame.
type ARP struct {
	EthSrc, EthDst       [6]byte
	Op                   uint16
	SenderMAC, TargetMAC [6]byte
	SenderIP, TargetIP   netip.Addr
}

// ParseARP reads an untagged Ethernet frame carrying an Ethernet/IPv4 ARP packet.
func ParseARP(f []byte) (ARP, bool) {
	var a ARP
	if len(f) < ethLen+arpLen || binary.BigEndian.Uint16(f[12:]) != etherARP {
		return a, false
	}
	p := f[ethLen:]
	if binary.BigEndian.Uint16(p[0:]) != 1 || binary.BigEndian.Uint16(p[2:]) != etherIPv4 || p[4] != 6 || p[5] != 4 {
		return a, false
	}
	copy(a.EthDst[:], f[0:6])
	copy(a.EthSrc[:], f[6:12])
	a.Op = binary.BigEndian.Uint16(p[6:])
	copy(a.SenderMAC[:], p[8:14])
	a.SenderIP = addr4(p[14:])
	copy(a.TargetMAC[:], p[18:24])
	a.TargetIP = addr4(p[24:])
	return a, true
}

// AppendARP appends a as an Ethernet frame.
func AppendARP(b []byte, a ARP) []byte {
	b = append(b, a.EthDst[:]...)
	b = append(b, a.EthSrc[:]...)
	b = binary.BigEndian.AppendUint16(b, etherARP)
	b = append(b, 0, 1, 0x08, 0x00, 6, 4)
	b = binary.BigEndian.AppendUint16(b, a.Op)
	s, t := as4(a.SenderIP), as4(a.TargetIP)
	b = append(b, a.SenderMAC[:]...)
	b = append(b, s[:]...)
	b = append(b, a.TargetMAC[:]...)
	b = append(b, t[:]...)
	return b
}

// as4 is a's four bytes, or 0.0.0.0 for anything but an IPv4 address.
func as4(a netip.Addr) [4]byte {
	if a.Is4() {
		return a.As4()
	}
	return [4]byte{}
}
