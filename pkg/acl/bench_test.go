// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchRules is a realistic list of n rules: anti-spoofing by MAC, blocked subnets,
// blocked services, per-subnet UDP ranges, blocked EtherTypes and VLANs, some for
// one user only; its last rule matches benchLast and no rule matches benchNone.
func benchRules(n int) []Rule {
	rules := make([]Rule, 0, n)
	for i := 0; len(rules) < n-1; i++ {
		r := Rule{Name: fmt.Sprintf("r%d", i), Action: Drop}
		switch i % 6 {
		case 0:
			r.Protocol, r.DstPorts = u8(ProtoTCP), ports(uint16(1000+i*7), uint16(1003+i*7))
		case 1:
			r.DstCIDR = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
		case 2:
			r.SrcMAC = MACMatch{Addr: [6]byte{2, 0, 0, 0, byte(i), 0}, Mask: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0}}
		case 3:
			r.Action = Pass
			r.SrcCIDR = netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24)
			r.Protocol, r.DstPorts = u8(ProtoUDP), ports(uint16(5000+i), uint16(5000+i))
		case 4:
			r.EtherType = 0x88b5 + uint16(i)
		case 5:
			r.VLAN = u16(uint16(100 + i))
			r.Users = []string{"alice"}
		}
		rules = append(rules, r)
	}
	return append(rules, Rule{Name: "last", Action: Drop, DstCIDR: netip.MustParsePrefix("172.16.0.0/12"), Protocol: u8(ProtoTCP), DstPorts: ports(8443, 8443)})
}

func benchFrame(dst string, dport uint16) []byte {
	f := eth(macB, "02:00:00:00:ff:01", -1, 0x0800, ip4("192.168.250.9", dst, 6, tcp(40000, dport)))
	return append(f, make([]byte, 1514-len(f))...)
}

// BenchmarkMatch measures the per-frame cost a session pays: with no rules the
// caller's nil check, with 10 and 100 rules a frame decided by the last rule and a
// frame no rule matches (both walk every field the list tests).
func BenchmarkMatch(b *testing.B) {
	frames := []struct {
		name string
		f    []byte
	}{
		{"last", benchFrame("172.20.1.1", 8443)},
		{"none", benchFrame("172.20.1.1", 8444)},
	}
	for _, n := range []int{0, 10, 100} {
		var m *Matcher
		if n > 0 {
			p, err := Compile(benchRules(n), Pass)
			if err != nil {
				b.Fatal(err)
			}
			m = p.ForUser("bob")
		}
		for _, fr := range frames {
			if drop, rule := m.Match(fr.f); n > 0 && (drop != (fr.name == "last") || (rule == n-1) != (fr.name == "last")) {
				b.Fatalf("%d rules, frame %s: drop=%v rule=%d", n, fr.name, drop, rule)
			}
			b.Run(fmt.Sprintf("rules=%d/%s", n, fr.name), func(b *testing.B) {
				b.ReportAllocs()
				drops := 0
				for b.Loop() {
					// As the hub will call it: a nil matcher is skipped.
					if m != nil {
						if drop, _ := m.Match(fr.f); drop {
							drops++
						}
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
				if drops < 0 {
					b.Fatal()
				}
			})
		}
	}
}

// BenchmarkCompile is the cost of a change to a 100-rule list: compiling it and
// building the matchers for everyone and for one user some rules name.
func BenchmarkCompile(b *testing.B) {
	rules := benchRules(100)
	b.ReportAllocs()
	for b.Loop() {
		p, _ := Compile(rules, Pass)
		p.ForUser("alice")
	}
}

// BenchmarkMatchMACList is a list of 100 exact source MACs (per-device
// anti-spoofing) that the frame misses: MAC rules are looked up by mask group, not
// compared one by one.
func BenchmarkMatchMACList(b *testing.B) {
	var rules []Rule
	for i := range 100 {
		rules = append(rules, Rule{Name: fmt.Sprintf("dev%d", i), Action: Pass, SrcMAC: MACMatch{Addr: [6]byte{2, 0, 0, 1, 0, byte(i)}, Mask: [6]byte{255, 255, 255, 255, 255, 255}}})
	}
	m := compile(b, Drop, rules...).ForUser("bob")
	f := benchFrame("10.0.0.1", 1)
	if drop, rule := m.Match(f); !drop || rule != -1 {
		b.Fatalf("drop=%v rule=%d", drop, rule)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Match(f)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
