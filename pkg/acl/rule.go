// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package acl compiles a Virtual Hub's access list into a matcher that decides, per
// Ethernet frame a session sends into the hub, whether the frame passes or is
// dropped.
//
// Rules are ordered and the first rule whose every match holds decides; a frame no
// rule matches gets the list's default action. The list is compiled once per change
// (Compile) and specialised once per session at login (Program.ForUser), so the
// per-frame work never looks at a user name and never allocates.
//
// Matching is a bit-vector classification (Lakshman and Stiliadis, SIGCOMM 1998):
// for every field some rule tests, the compiler cuts the field's value space into
// intervals on which the set of rules that match is constant, and stores that set
// as a bitmap of rule positions. A frame costs one binary search per tested field
// and an AND of bitmaps; the lowest bit left is the first rule that matches. So 100
// rules cost about as much as 10: the cost grows with the number of distinct
// boundaries (log2), not with the number of rules. MAC masks are arbitrary bits,
// not intervals, so MAC rules are grouped by mask and each group is searched for
// the masked address: a list uses few distinct masks.
//
// The package is pure logic; api.go converts the VirtualHub API type.
package acl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Action is what a rule, or the default, does with a frame.
type Action uint8

const (
	// Pass lets the frame into the hub.
	Pass Action = iota
	// Drop discards the frame; it is counted against the rule that dropped it.
	Drop
)

func (a Action) String() string {
	switch a {
	case Pass:
		return "Pass"
	case Drop:
		return "Drop"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// MaxRules bounds a list, as the CRD does; it also sizes the matcher's bitmaps.
const MaxRules = 256

// Well-known values for Rule fields.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeIPv6 uint16 = 0x86dd

	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// MACMatch matches an address: the bits set in Mask must equal those in Addr. The
// zero MACMatch (empty mask) matches every address.
type MACMatch struct {
	Addr, Mask [6]byte
}

// PortRange is an inclusive range of TCP or UDP ports.
type PortRange struct {
	Lo, Hi uint16
}

// Rule is one access-list rule. Every match that is set must hold for the rule to
// apply; unset matches (zero values, nil pointers) match anything. Matches on IP
// fields (CIDRs, Protocol, ports) never hold for a frame that is not IPv4 or IPv6 or
// whose headers are cut short, and ports never hold for a non-first IP fragment.
type Rule struct {
	// Name identifies the rule in counters and errors; unique in the list.
	Name   string
	Action Action

	SrcMAC, DstMAC MACMatch
	// EtherType after any 802.1Q tag; 0 matches any.
	EtherType uint16
	// VLAN is the 802.1Q VLAN ID; 0 matches untagged and priority-tagged frames.
	VLAN *uint16
	// SrcCIDR and DstCIDR match the IP addresses; the zero Prefix matches any. A
	// prefix matches only frames of its own family.
	SrcCIDR, DstCIDR netip.Prefix
	// Protocol is the IPv4 protocol or the IPv6 upper-layer header (after
	// extension headers).
	Protocol *uint8
	// SrcPorts and DstPorts need Protocol TCP or UDP.
	SrcPorts, DstPorts *PortRange
	// Users limits the rule to sessions of these users; empty: every session.
	Users []string
}

// ParseAction reads Pass or Drop (any case); "" is Pass, the documented default.
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(s) {
	case "", "pass":
		return Pass, nil
	case "drop":
		return Drop, nil
	}
	return 0, fmt.Errorf("action %q: use Pass or Drop", s)
}

// ParseMAC reads "02:00:5e:00:00:01", "02:00:5e:00:00:00/ff:ff:ff:00:00:00",
// "broadcast" or "multicast" (the group bit, which broadcast has too). Address bits
// outside the mask are ignored, as the mask says they do not count.
func ParseMAC(s string) (MACMatch, error) {
	var m MACMatch
	switch strings.ToLower(s) {
	case "broadcast":
		m.Addr = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		m.Mask = m.Addr
		return m, nil
	case "multicast":
		m.Addr[0], m.Mask[0] = 1, 1
		return m, nil
	}
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := parseMAC48(addr)
	if err != nil {
		return m, fmt.Errorf("MAC %q: %v; write 02:00:5e:00:00:01, 02:00:5e:00:00:00/ff:ff:ff:00:00:00, broadcast or multicast", s, err)
	}
	k := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if hasMask {
		if k, err = parseMAC48(mask); err != nil {
			return m, fmt.Errorf("MAC mask in %q: %v; write the mask as an address, e.g. ff:ff:ff:00:00:00", s, err)
		}
	}
	for i := range a {
		m.Addr[i] = a[i] & k[i]
	}
	m.Mask = k
	return m, nil
}

func parseMAC48(s string) ([6]byte, error) {
	var out [6]byte
	// The CRD admits ':' and '-' in any mix; net.ParseMAC wants one of them.
	hw, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil {
		return out, errors.New("not a MAC address")
	}
	if len(hw) != 6 {
		return out, errors.New("not a 48-bit MAC address")
	}
	copy(out[:], hw)
	return out, nil
}

// ParseEtherType reads ipv4, ipv6, arp, a decimal number or a 0x hex number; the
// value must be at least 0x0600 (below it the field is an 802.3 length).
func ParseEtherType(s string) (uint16, error) {
	switch strings.ToLower(s) {
	case "ipv4":
		return EtherTypeIPv4, nil
	case "ipv6":
		return EtherTypeIPv6, nil
	case "arp":
		return EtherTypeARP, nil
	}
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil || v < 0x0600 {
		return 0, fmt.Errorf("etherType %q: use ipv4, ipv6, arp, or a number from 1536 (0x0600) to 65535 (0xffff)", s)
	}
	return uint16(v), nil
}

// ParseProtocol reads tcp, udp, icmp, icmpv6 or a number from 0 to 255.
func ParseProtocol(s string) (uint8, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return ProtoTCP, nil
	case "udp":
		return ProtoUDP, nil
	case "icmp":
		return ProtoICMP, nil
	case "icmpv6":
		return ProtoICMPv6, nil
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("protocol %q: use tcp, udp, icmp, icmpv6 or a number from 0 to 255", s)
	}
	return uint8(v), nil
}

// ParsePorts reads one port ("443") or an inclusive range ("1000-2000").
func ParsePorts(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, err2 := a, error(nil)
	if isRange {
		b, err2 = strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	}
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("ports %q: use a port from 0 to 65535 or a range like 1000-2000", s)
	}
	if a > b {
		return PortRange{}, fmt.Errorf("ports %q: the range runs backwards; write %d-%d", s, b, a)
	}
	return PortRange{Lo: uint16(a), Hi: uint16(b)}, nil
}
