// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"encoding/binary"
	"math/bits"
)

// Matcher decides for one session's frames. It is read-only after ForUser built it
// (the counters it bumps belong to the Program), so any number of sessions may
// share it and call Match concurrently.
type Matcher struct {
	prog *Program
	def  Action
	// rule maps a bit position to the rule's index in the Program: the positions
	// are the rules that apply to this matcher's user, in order.
	rule []int

	all set
	// fieldless rules test nothing, so they match even a frame too short to hold
	// an Ethernet header.
	fieldless set
	// typed rules test the EtherType, the VLAN or an IP field: a frame whose VLAN
	// tag is cut short cannot match them.
	typed     set
	needL3    set // test a CIDR, the protocol or a port
	needProto set // test the protocol (every port rule does)
	needL4    set // test a port
	drop      set

	useSrcMAC, useDstMAC                                            bool
	useEther, useVLAN, useSrc, useDst, useProto, useSport, useDport bool

	srcMAC, dstMAC macTable

	ether, vlan, src4, dst4, sport, dport table
	src6, dst6                            table128
	proto                                 *[256]set
}

const (
	ethLen    = 14
	tagLen    = 4
	tpid8021Q = 0x8100
)

func mac48(b []byte) uint64 {
	_ = b[5]
	return uint64(binary.BigEndian.Uint32(b))<<16 | uint64(binary.BigEndian.Uint16(b[4:]))
}

func mac48a(a [6]byte) uint64 { return mac48(a[:]) }

func newMatcher(p *Program, idx []int) *Matcher {
	m := &Matcher{prog: p, def: p.def, rule: idx}
	var (
		etherS, vlanS, src4S, dst4S, sportS, dportS       []span
		src6S, dst6S                                      []span128
		srcMACS, dstMACS                                  []macSpan
		srcMACR, dstMACR                                  set
		etherR, vlanR, srcR, dstR, protoR, sportR, dportR set
		protoOf                                           [256]set
	)
	for b, ri := range idx {
		r := &p.rules[ri]
		m.all.add(b)
		if r.Action == Drop {
			m.drop.add(b)
		}
		if k := mac48a(r.SrcMAC.Mask); k != 0 {
			srcMACR.add(b)
			srcMACS = append(srcMACS, macSpan{k, mac48a(r.SrcMAC.Addr) & k, b})
		}
		if k := mac48a(r.DstMAC.Mask); k != 0 {
			dstMACR.add(b)
			dstMACS = append(dstMACS, macSpan{k, mac48a(r.DstMAC.Addr) & k, b})
		}
		if r.EtherType != 0 {
			etherR.add(b)
			etherS = append(etherS, span{uint64(r.EtherType), uint64(r.EtherType), b})
		}
		if r.VLAN != nil {
			vlanR.add(b)
			vlanS = append(vlanS, span{uint64(*r.VLAN), uint64(*r.VLAN), b})
		}
		if r.SrcCIDR.IsValid() {
			srcR.add(b)
			src4S, src6S = prefixSpan(r, true, b, src4S, src6S)
		}
		if r.DstCIDR.IsValid() {
			dstR.add(b)
			dst4S, dst6S = prefixSpan(r, false, b, dst4S, dst6S)
		}
		if r.Protocol != nil {
			protoR.add(b)
			protoOf[*r.Protocol].add(b)
		}
		if r.SrcPorts != nil {
			sportR.add(b)
			sportS = append(sportS, span{uint64(r.SrcPorts.Lo), uint64(r.SrcPorts.Hi), b})
		}
		if r.DstPorts != nil {
			dportR.add(b)
			dportS = append(dportS, span{uint64(r.DstPorts.Lo), uint64(r.DstPorts.Hi), b})
		}
	}
	wild := func(tested set) set {
		w := m.all
		w.andNot(&tested)
		return w
	}
	for _, s := range []*set{&srcR, &dstR, &protoR, &sportR, &dportR} {
		for w := range m.needL3 {
			m.needL3[w] |= s[w]
		}
	}
	m.needProto = protoR
	m.needL4 = sportR
	for w := range m.needL4 {
		m.needL4[w] |= dportR[w]
		m.typed[w] = etherR[w] | vlanR[w] | m.needL3[w]
	}
	m.fieldless = wild(m.typed)
	m.fieldless.andNot(&srcMACR)
	m.fieldless.andNot(&dstMACR)

	m.useSrcMAC, m.srcMAC = !srcMACR.empty(), buildMACTable(srcMACS, wild(srcMACR))
	m.useDstMAC, m.dstMAC = !dstMACR.empty(), buildMACTable(dstMACS, wild(dstMACR))

	m.useEther, m.ether = !etherR.empty(), buildTable(etherS, wild(etherR))
	m.useVLAN, m.vlan = !vlanR.empty(), buildTable(vlanS, wild(vlanR))
	m.useSrc = !srcR.empty()
	m.src4, m.src6 = buildTable(src4S, wild(srcR)), buildTable128(src6S, wild(srcR))
	m.useDst = !dstR.empty()
	m.dst4, m.dst6 = buildTable(dst4S, wild(dstR)), buildTable128(dst6S, wild(dstR))
	m.useSport, m.sport = !sportR.empty(), buildTable(sportS, wild(sportR))
	m.useDport, m.dport = !dportR.empty(), buildTable(dportS, wild(dportR))
	if m.useProto = !protoR.empty(); m.useProto {
		m.proto = new([256]set)
		pw := wild(protoR)
		for v := range m.proto {
			m.proto[v] = protoOf[v]
			for w := range pw {
				m.proto[v][w] |= pw[w]
			}
		}
	}
	return m
}

// prefixSpan adds the rule's source (src) or destination prefix as a range of
// addresses to the table of its family.
func prefixSpan(r *Rule, src bool, b int, s4 []span, s6 []span128) ([]span, []span128) {
	pfx := r.DstCIDR
	if src {
		pfx = r.SrcCIDR
	}
	a := pfx.Addr().As16()
	if pfx.Addr().Is4() {
		lo := uint64(binary.BigEndian.Uint32(a[12:]))
		host := uint64(1)<<(32-pfx.Bits()) - 1
		return append(s4, span{lo, lo | host, b}), s6
	}
	lo := u128{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
	hi := lo
	if n := pfx.Bits(); n < 64 {
		hi.hi |= 1<<(64-n) - 1
		hi.lo = ^uint64(0)
	} else if n < 128 {
		hi.lo |= 1<<(128-n) - 1
	}
	return s4, append(s6, span128{lo, hi, b})
}

// Match decides one frame a session sent: drop reports whether to discard it, and
// rule is the index (in the list given to Compile) of the rule that decided, or -1
// for the default action. A drop is counted against that rule. Headers are parsed
// once and only as deep as the rules still in the running need; a frame cut short
// or malformed at some layer matches only rules that test nothing at that layer or
// below. A super-frame (GSO) is matched on its headers like any frame. A nil
// Matcher passes everything.
func (m *Matcher) Match(frame []byte) (drop bool, rule int) {
	drop, rule = m.Decide(frame)
	if drop {
		m.AddDrops(rule, 1)
	}
	return drop, rule
}

// AddDrops counts n frames dropped by rule (-1: the default), for callers that
// use Decide and count a batch's drops themselves.
func (m *Matcher) AddDrops(rule int, n uint64) {
	if rule < 0 {
		rule = len(m.prog.rules)
	}
	m.prog.drops[rule].n.Add(n)
}

// Decide is Match without counting. Every session dropping by one rule bumps the
// same counter; under a flood from many sessions on many cores that cache line
// bounces between them, so a caller that handles frames in batches can count a
// run of drops by the same rule itself and publish it once with AddDrops.
func (m *Matcher) Decide(frame []byte) (drop bool, rule int) {
	if m == nil {
		return false, -1
	}
	cand := m.all
	if len(frame) < ethLen {
		cand.and(&m.fieldless)
	} else {
		if m.useDstMAC {
			m.dstMAC.narrow(mac48(frame), &cand)
		}
		if m.useSrcMAC {
			m.srcMAC.narrow(mac48(frame[6:]), &cand)
		}
		et := uint64(binary.BigEndian.Uint16(frame[12:]))
		off, vid, ok := ethLen, uint64(0), true
		if et == tpid8021Q {
			if len(frame) < ethLen+tagLen {
				ok = false
				cand.andNot(&m.typed)
			} else {
				vid = uint64(binary.BigEndian.Uint16(frame[14:]) & 0x0fff)
				et = uint64(binary.BigEndian.Uint16(frame[16:]))
				off += tagLen
			}
		}
		if ok {
			if m.useEther {
				cand.and(m.ether.lookup(et))
			}
			if m.useVLAN {
				cand.and(m.vlan.lookup(vid))
			}
			if cand.meets(&m.needL3) {
				m.matchIP(frame, off, et, &cand)
			}
		}
	}
	for w, c := range cand {
		if c == 0 {
			continue
		}
		b := bits.TrailingZeros64(c)
		return m.drop[w]&(1<<uint(b)) != 0, m.rule[w<<6|b]
	}
	return m.def == Drop, -1
}

// matchIP narrows cand by the IP header at frame[off:] (EtherType et) and, if rules
// with ports are still in the running, by the TCP or UDP ports.
func (m *Matcher) matchIP(f []byte, off int, et uint64, cand *set) {
	proto, l4 := -1, -1
	switch et {
	case uint64(EtherTypeIPv4):
		if len(f) < off+20 || f[off]>>4 != 4 || f[off]&0x0f < 5 {
			cand.andNot(&m.needL3)
			return
		}
		if m.useSrc {
			cand.and(m.src4.lookup(uint64(binary.BigEndian.Uint32(f[off+12:]))))
		}
		if m.useDst {
			cand.and(m.dst4.lookup(uint64(binary.BigEndian.Uint32(f[off+16:]))))
		}
		proto = int(f[off+9])
		// A fragment other than the first carries no transport header.
		if binary.BigEndian.Uint16(f[off+6:])&0x1fff == 0 {
			l4 = off + int(f[off]&0x0f)*4
		}
	case uint64(EtherTypeIPv6):
		if len(f) < off+40 || f[off]>>4 != 6 {
			cand.andNot(&m.needL3)
			return
		}
		if m.useSrc {
			cand.and(m.src6.lookup(u128{binary.BigEndian.Uint64(f[off+8:]), binary.BigEndian.Uint64(f[off+16:])}))
		}
		if m.useDst {
			cand.and(m.dst6.lookup(u128{binary.BigEndian.Uint64(f[off+24:]), binary.BigEndian.Uint64(f[off+32:])}))
		}
		proto, l4 = ipv6Upper(f, off)
	default:
		cand.andNot(&m.needL3)
		return
	}
	if proto < 0 {
		cand.andNot(&m.needProto)
		return
	}
	if m.useProto {
		cand.and(&m.proto[proto])
	}
	if !cand.meets(&m.needL4) {
		return
	}
	if l4 < 0 || (proto != int(ProtoTCP) && proto != int(ProtoUDP)) || len(f) < l4+4 {
		cand.andNot(&m.needL4)
		return
	}
	if m.useSport {
		cand.and(m.sport.lookup(uint64(binary.BigEndian.Uint16(f[l4:]))))
	}
	if m.useDport {
		cand.and(m.dport.lookup(uint64(binary.BigEndian.Uint16(f[l4+2:]))))
	}
}

// ipv6Upper walks the extension headers after the IPv6 header at f[off:] and
// returns the upper-layer protocol and its offset; the offset is -1 for a
// non-first fragment, and both are -1 when the chain is cut short or longer than
// any sane packet's (8 headers).
func ipv6Upper(f []byte, off int) (proto, l4 int) {
	nh, p, first := int(f[off+6]), off+40, true
	for range 8 {
		switch nh {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(f) < p+2 {
				return -1, -1
			}
			nh, p = int(f[p]), p+(int(f[p+1])+1)*8
		case 51: // authentication header: its length counts 4-octet units
			if len(f) < p+2 {
				return -1, -1
			}
			nh, p = int(f[p]), p+(int(f[p+1])+2)*4
		case 44: // fragment
			if len(f) < p+8 {
				return -1, -1
			}
			first = first && binary.BigEndian.Uint16(f[p+2:])&0xfff8 == 0
			nh, p = int(f[p]), p+8
		default:
			if !first {
				return nh, -1
			}
			return nh, p
		}
	}
	return -1, -1
}
