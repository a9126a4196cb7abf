// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var (
	macA  = "02:00:00:00:00:0a"
	macB  = "02:00:00:00:00:0b"
	bcast = "ff:ff:ff:ff:ff:ff"
)

func hw(s string) []byte {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// eth builds an Ethernet frame; vlan < 0 leaves it untagged.
func eth(dst, src string, vlan int, et uint16, payload []byte) []byte {
	b := append(append([]byte{}, hw(dst)...), hw(src)...)
	if vlan >= 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, 0x6000|uint16(vlan)) // PCP 3: must be ignored
	}
	b = binary.BigEndian.AppendUint16(b, et)
	return append(b, payload...)
}

func ip4(src, dst string, proto uint8, l4 []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return append(h, l4...)
}

func ip6(src, dst string, nh uint8, rest []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(rest)))
	h[6] = nh
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, rest...)
}

// l4 is a TCP (20-byte) or UDP (8-byte) header with the given ports.
func tcp(sp, dp uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, sp)
	binary.BigEndian.PutUint16(h[2:], dp)
	h[12] = 5 << 4
	return h
}

func udp(sp, dp uint16) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h, sp)
	binary.BigEndian.PutUint16(h[2:], dp)
	return h
}

func tcp4(src, dst string, sp, dp uint16) []byte {
	return eth(macB, macA, -1, 0x0800, ip4(src, dst, 6, tcp(sp, dp)))
}

func u16(v uint16) *uint16 { return &v }
func u8(v uint8) *uint8    { return &v }
func ports(lo, hi uint16) *PortRange {
	return &PortRange{lo, hi}
}

func mustMAC(t testing.TB, s string) MACMatch {
	t.Helper()
	m, err := ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func compile(t testing.TB, def Action, rules ...Rule) *Program {
	t.Helper()
	p, err := Compile(rules, def)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// expect checks that frame is decided by rule want (-1: the default) with action drop.
func expect(t *testing.T, m *Matcher, what string, frame []byte, wantDrop bool, want int) {
	t.Helper()
	drop, rule := m.Match(frame)
	if drop != wantDrop || rule != want {
		t.Errorf("%s: got drop=%v rule=%d, want drop=%v rule=%d", what, drop, rule, wantDrop, want)
	}
	if rd, rr := reference(m, frame); rd != drop || rr != rule {
		t.Errorf("%s: matcher says drop=%v rule=%d, reference says drop=%v rule=%d", what, drop, rule, rd, rr)
	}
}

// reference decides a frame the slow, obvious way, rule by rule, on a full parse:
// the compiled matcher must always agree with it.
func reference(m *Matcher, f []byte) (bool, int) {
	if m == nil {
		return false, -1
	}
	h := parseRef(f)
	for _, ri := range m.rule {
		r := &m.prog.rules[ri]
		if refMatch(r, &h) {
			return r.Action == Drop, ri
		}
	}
	return m.def == Drop, -1
}

type refHeaders struct {
	l2, typed    bool
	dst, src     [6]byte
	et           uint16
	vid          uint16
	ip           bool
	srcIP, dstIP netip.Addr
	protoOK      bool
	proto        uint8
	portsOK      bool
	sport, dport uint16
}

func parseRef(f []byte) refHeaders {
	var h refHeaders
	if len(f) < 14 {
		return h
	}
	h.l2 = true
	copy(h.dst[:], f[0:6])
	copy(h.src[:], f[6:12])
	h.et = binary.BigEndian.Uint16(f[12:])
	rest := f[14:]
	if h.et == 0x8100 {
		if len(rest) < 4 {
			return h
		}
		h.vid = binary.BigEndian.Uint16(rest) & 0xfff
		h.et = binary.BigEndian.Uint16(rest[2:])
		rest = rest[4:]
	}
	h.typed = true
	var l4 []byte
	switch h.et {
	case 0x0800:
		if len(rest) < 20 || rest[0]>>4 != 4 || rest[0]&15 < 5 {
			return h
		}
		h.ip = true
		h.srcIP = netip.AddrFrom4([4]byte(rest[12:16]))
		h.dstIP = netip.AddrFrom4([4]byte(rest[16:20]))
		h.protoOK, h.proto = true, rest[9]
		ihl := int(rest[0]&15) * 4
		if binary.BigEndian.Uint16(rest[6:])&0x1fff == 0 && len(rest) >= ihl {
			l4 = rest[ihl:]
		}
	case 0x86dd:
		if len(rest) < 40 || rest[0]>>4 != 6 {
			return h
		}
		h.ip = true
		h.srcIP = netip.AddrFrom16([16]byte(rest[8:24]))
		h.dstIP = netip.AddrFrom16([16]byte(rest[24:40]))
		nh := rest[6]
		p := rest[40:]
		frag := false
		for i := 0; ; i++ {
			if i == 8 {
				return h
			}
			if nh == 0 || nh == 43 || nh == 60 || nh == 51 || nh == 44 {
				if len(p) < 2 || (nh == 44 && len(p) < 8) {
					return h
				}
				n := (int(p[1]) + 1) * 8
				if nh == 51 {
					n = (int(p[1]) + 2) * 4
				}
				if nh == 44 {
					n = 8
					frag = frag || binary.BigEndian.Uint16(p[2:])&0xfff8 != 0
				}
				nh = p[0]
				if n > len(p) {
					p = nil
				} else {
					p = p[n:]
				}
				continue
			}
			break
		}
		h.protoOK, h.proto = true, nh
		if !frag && p != nil {
			l4 = p
		}
	default:
		return h
	}
	if (h.proto == 6 || h.proto == 17) && len(l4) >= 4 {
		h.portsOK = true
		h.sport = binary.BigEndian.Uint16(l4)
		h.dport = binary.BigEndian.Uint16(l4[2:])
	}
	return h
}

func macOK(m MACMatch, a [6]byte) bool {
	for i := range a {
		if a[i]&m.Mask[i] != m.Addr[i]&m.Mask[i] {
			return false
		}
	}
	return true
}

func refMatch(r *Rule, h *refHeaders) bool {
	hasMAC := r.SrcMAC.Mask != [6]byte{} || r.DstMAC.Mask != [6]byte{}
	typed := r.EtherType != 0 || r.VLAN != nil || r.SrcCIDR.IsValid() || r.DstCIDR.IsValid() || r.Protocol != nil || r.SrcPorts != nil || r.DstPorts != nil
	if !h.l2 {
		return !hasMAC && !typed
	}
	if !macOK(r.SrcMAC, h.src) || !macOK(r.DstMAC, h.dst) {
		return false
	}
	if !typed {
		return true
	}
	if !h.typed {
		return false
	}
	if r.EtherType != 0 && r.EtherType != h.et {
		return false
	}
	if r.VLAN != nil && *r.VLAN != h.vid {
		return false
	}
	if !(r.SrcCIDR.IsValid() || r.DstCIDR.IsValid() || r.Protocol != nil || r.SrcPorts != nil || r.DstPorts != nil) {
		return true
	}
	if !h.ip {
		return false
	}
	if r.SrcCIDR.IsValid() && !r.SrcCIDR.Contains(h.srcIP) {
		return false
	}
	if r.DstCIDR.IsValid() && !r.DstCIDR.Contains(h.dstIP) {
		return false
	}
	if r.Protocol != nil && (!h.protoOK || *r.Protocol != h.proto) {
		return false
	}
	if r.SrcPorts != nil && (!h.portsOK || h.sport < r.SrcPorts.Lo || h.sport > r.SrcPorts.Hi) {
		return false
	}
	if r.DstPorts != nil && (!h.portsOK || h.dport < r.DstPorts.Lo || h.dport > r.DstPorts.Hi) {
		return false
	}
	return true
}
