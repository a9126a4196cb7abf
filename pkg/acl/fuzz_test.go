// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// byteSource hands out the fuzzer's bytes, then zeros.
type byteSource struct{ b []byte }

func (s *byteSource) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	v := s.b[0]
	s.b = s.b[1:]
	return v
}

func (s *byteSource) pick(n int) int { return int(s.next()) % n }

var (
	poolMAC = []string{"", macA, macB, "broadcast", "multicast", "02:00:00:00:00:00/ff:ff:ff:ff:ff:f0", "33:33:00:00:00:00/ff:ff:00:00:00:00"}
	poolET  = []uint16{0, 0x0800, 0x86dd, 0x0806, 0x88cc}
	poolPfx = []string{"", "10.0.0.0/8", "10.0.0.1/32", "0.0.0.0/0", "10.128.0.0/9", "fd00::/8", "::/0", "fd00::1/128", "fd00::/127", "fd00:0:0:0:8000::/65"}
	poolPr  = []int{-1, 6, 17, 1, 58, 0}
)

// genRules builds up to 40 valid rules whose values are drawn from pools that
// the frames of genFrame hit, so matches and near-misses are both common.
func genRules(s *byteSource) []Rule {
	n := s.pick(41)
	rules := make([]Rule, 0, n)
	for i := range n {
		r := Rule{Name: "r" + string(rune('A'+i%26)) + string(rune('a'+i/26)), Action: Action(s.pick(2))}
		// Each match is set in about one rule of four, so rules match often
		// enough to exercise order and not only the default.
		sparse := func() bool { return s.pick(4) == 0 }
		if m := poolMAC[s.pick(len(poolMAC))]; m != "" && sparse() {
			r.SrcMAC, _ = ParseMAC(m)
		}
		if m := poolMAC[s.pick(len(poolMAC))]; m != "" && sparse() {
			r.DstMAC, _ = ParseMAC(m)
		}
		if sparse() {
			r.EtherType = poolET[s.pick(len(poolET))]
		}
		if v := s.pick(12); v < 3 {
			r.VLAN = u16([]uint16{0, 5, 10}[v])
		}
		if p := poolPfx[s.pick(len(poolPfx))]; p != "" && sparse() {
			r.SrcCIDR = netip.MustParsePrefix(p)
		}
		if p := poolPfx[s.pick(len(poolPfx))]; p != "" && sparse() {
			r.DstCIDR = netip.MustParsePrefix(p)
			if r.SrcCIDR.IsValid() && r.SrcCIDR.Addr().Is4() != r.DstCIDR.Addr().Is4() {
				r.DstCIDR = netip.Prefix{}
			}
		}
		if pr := poolPr[s.pick(len(poolPr))]; pr >= 0 && s.pick(2) == 0 {
			r.Protocol = u8(uint8(pr))
			if pr == 6 || pr == 17 {
				for _, pp := range []**PortRange{&r.SrcPorts, &r.DstPorts} {
					if s.pick(2) == 0 {
						a, b := uint16(s.next())<<4, uint16(s.next())<<4
						if a > b {
							a, b = b, a
						}
						*pp = ports(a, b)
					}
				}
			}
		}
		if refMatch(&r, &refHeaders{}) && s.pick(8) != 0 {
			// Mostly no catch-alls: one early catch-all would decide every frame.
			a, b := uint16(s.next())<<4, uint16(s.next())<<4
			r.Protocol, r.DstPorts = u8([]uint8{6, 17}[s.pick(2)]), ports(min(a, b), max(a, b))
		}
		if s.pick(4) == 0 {
			r.Users = []string{[]string{"alice", "bob"}[s.pick(2)]}
		}
		rules = append(rules, r)
	}
	return rules
}

// genFrame picks a template frame, overwrites a few bytes and may cut it short.
func genFrame(s *byteSource) []byte {
	src4 := []string{"10.0.0.1", "10.200.1.1", "192.0.2.1"}[s.pick(3)]
	src6 := []string{"fd00::1", "fd00::8000:0:0:1", "2001:db8::1", "fd00::"}[s.pick(4)]
	mac := []string{macA, macB, "02:00:00:00:00:05", "33:33:00:00:00:01", bcast}[s.pick(5)]
	vlan := []int{-1, -1, 0, 5, 10}[s.pick(5)]
	sp, dp := uint16(s.next())<<4|uint16(s.pick(16)), uint16(s.next())<<4
	var f []byte
	switch s.pick(7) {
	case 0:
		f = eth(mac, macA, vlan, 0x0800, ip4(src4, "10.0.0.2", 6, tcp(sp, dp)))
	case 1:
		f = eth(macB, mac, vlan, 0x0800, ip4(src4, "10.0.0.2", 17, udp(sp, dp)))
	case 2:
		f = eth(mac, macA, vlan, 0x86dd, ip6(src6, "fd00::2", 6, tcp(sp, dp)))
	case 3:
		ext := append([]byte{17, 0, 0, 0, 0, 0, 0, 0}, udp(sp, dp)...)
		f = eth(mac, mac, vlan, 0x86dd, ip6(src6, src6, []uint8{0, 60, 43, 44, 51}[s.pick(5)], ext))
	case 4:
		f = eth(mac, macA, vlan, 0x0806, make([]byte, 28))
	case 5:
		f = eth(mac, macA, vlan, 0x86dd, ip6(src6, "fe80::1", 58, make([]byte, 8)))
	default:
		f = make([]byte, s.pick(80))
		for i := range f {
			f[i] = s.next()
		}
	}
	for range s.pick(4) {
		if len(f) > 0 {
			f[s.pick(len(f))] = s.next()
		}
	}
	if s.pick(3) == 0 {
		f = f[:s.pick(len(f)+1)]
	}
	return f
}

// checkRandom compiles random rules and matches random frames for three users; the
// matcher must agree with the rule-by-rule reference, and per-user matchers must
// agree with a reference over the rules that apply to that user.
func checkRandom(t *testing.T, data []byte) {
	s := &byteSource{b: data}
	rules := genRules(s)
	def := Action(s.pick(2))
	p, err := Compile(rules, def)
	if err != nil {
		t.Fatalf("generated rules refused: %v", err)
	}
	for range 4 {
		f := genFrame(s)
		for _, user := range []string{"alice", "bob", "carol"} {
			m := p.ForUser(user)
			drop, rule := m.Match(f)
			wd, wr := def == Drop, -1
			for i := range rules {
				r := &rules[i]
				if (len(r.Users) == 0 || r.Users[0] == user) && refMatch(r, ptr(parseRef(f))) {
					wd, wr = r.Action == Drop, i
					break
				}
			}
			// A nil matcher stands for "passes everything" and names no rule.
			if m == nil && !wd {
				wr = -1
			}
			if drop != wd || rule != wr {
				t.Fatalf("user %s frame %x: drop=%v rule=%d, reference drop=%v rule=%d\nrules: %+v", user, f, drop, rule, wd, wr, rules)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func FuzzMatch(f *testing.F) {
	for seed := range uint64(16) {
		r := rand.New(rand.NewPCG(seed, 1))
		b := make([]byte, 600)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(checkRandom)
}

// TestAgainstReference runs the fuzz check on pseudo-random inputs on every test
// run, so the comparison with the reference does not depend on fuzzing time.
func TestAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	b := make([]byte, 704)
	for range 3000 {
		for i := 0; i < len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		checkRandom(t, b[:r.IntN(len(b))])
	}
}
