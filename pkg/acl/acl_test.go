// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"net/netip"
	"strings"
	"testing"
)

func TestMACMatches(t *testing.T) {
	m := compile(t, Pass,
		Rule{Name: "exact", Action: Drop, SrcMAC: mustMAC(t, "02:00:00:00:00:01")},
		Rule{Name: "oui", Action: Drop, SrcMAC: mustMAC(t, "00:50:56:12:34:56/ff:ff:ff:00:00:00")},
		Rule{Name: "bcast", Action: Drop, DstMAC: mustMAC(t, "broadcast")},
		Rule{Name: "mcast", Action: Drop, DstMAC: mustMAC(t, "multicast")},
		Rule{Name: "pair", Action: Drop, SrcMAC: mustMAC(t, macA), DstMAC: mustMAC(t, "02:00:00:00:00:0c")},
	).ForUser("u")
	arp := func(dst, src string) []byte { return eth(dst, src, -1, 0x0806, make([]byte, 28)) }
	expect(t, m, "exact source", arp(macB, "02:00:00:00:00:01"), true, 0)
	expect(t, m, "source one bit off", arp(macB, "02:00:00:00:00:03"), false, -1)
	expect(t, m, "source in the OUI, host bits ignored", arp(macB, "00:50:56:ab:cd:ef"), true, 1)
	expect(t, m, "source outside the OUI", arp(macB, "00:50:57:12:34:56"), false, -1)
	expect(t, m, "broadcast", arp(bcast, macA), true, 2)
	expect(t, m, "IPv6 multicast is multicast, not broadcast", arp("33:33:00:00:00:01", macA), true, 3)
	expect(t, m, "both addresses", arp("02:00:00:00:00:0c", macA), true, 4)
	expect(t, m, "only one of both addresses", arp("02:00:00:00:00:0d", macA), false, -1)
}

func TestEtherTypeAndVLAN(t *testing.T) {
	p := compile(t, Pass,
		Rule{Name: "arp-on-10", Action: Drop, EtherType: EtherTypeARP, VLAN: u16(10)},
		Rule{Name: "untagged-lldp", Action: Drop, EtherType: 0x88cc, VLAN: u16(0)},
		Rule{Name: "v6", Action: Drop, EtherType: EtherTypeIPv6},
		Rule{Name: "vlan-20", Action: Drop, VLAN: u16(20)},
	)
	m := p.ForUser("u")
	payload := make([]byte, 46)
	expect(t, m, "ARP tagged 10", eth(bcast, macA, 10, 0x0806, payload), true, 0)
	expect(t, m, "ARP untagged", eth(bcast, macA, -1, 0x0806, payload), false, -1)
	expect(t, m, "ARP tagged 11", eth(bcast, macA, 11, 0x0806, payload), false, -1)
	expect(t, m, "LLDP untagged: vlan 0", eth(bcast, macA, -1, 0x88cc, payload), true, 1)
	expect(t, m, "LLDP priority-tagged (VID 0) counts as untagged", eth(bcast, macA, 0, 0x88cc, payload), true, 1)
	expect(t, m, "LLDP on VLAN 5", eth(bcast, macA, 5, 0x88cc, payload), false, -1)
	expect(t, m, "the EtherType inside the tag is the one matched", eth(macB, macA, 7, 0x86dd, payload), true, 2)
	expect(t, m, "anything on VLAN 20", eth(macB, macA, 20, 0x0800, payload), true, 3)
	expect(t, m, "an 802.3 length field is no EtherType", eth(macB, macA, -1, 100, payload), false, -1)
}

func TestPrefixes(t *testing.T) {
	m := compile(t, Pass,
		Rule{Name: "v4-src", Action: Drop, SrcCIDR: netip.MustParsePrefix("10.1.0.0/16")},
		Rule{Name: "v4-dst-host", Action: Drop, DstCIDR: netip.MustParsePrefix("192.0.2.7/32")},
		Rule{Name: "v6-src", Action: Drop, SrcCIDR: netip.MustParsePrefix("fd00:1::/32")},
		Rule{Name: "v6-both", Action: Drop, SrcCIDR: netip.MustParsePrefix("2001:db8::/64"), DstCIDR: netip.MustParsePrefix("2001:db8:0:0:8000::/65")},
		Rule{Name: "v6-any", Action: Pass, SrcCIDR: netip.MustParsePrefix("::/0")},
		Rule{Name: "v4-any", Action: Drop, DstCIDR: netip.MustParsePrefix("0.0.0.0/0")},
	).ForUser("u")
	f4 := func(s, d string) []byte { return eth(macB, macA, -1, 0x0800, ip4(s, d, 17, udp(1, 2))) }
	f6 := func(s, d string) []byte { return eth(macB, macA, -1, 0x86dd, ip6(s, d, 17, udp(1, 2))) }
	expect(t, m, "first address of the /16", f4("10.1.0.0", "8.8.8.8"), true, 0)
	expect(t, m, "last address of the /16", f4("10.1.255.255", "8.8.8.8"), true, 0)
	expect(t, m, "just past the /16 falls to 0.0.0.0/0", f4("10.2.0.0", "8.8.8.8"), true, 5)
	expect(t, m, "host /32", f4("10.9.0.1", "192.0.2.7"), true, 1)
	expect(t, m, "v6 /32", f6("fd00:1:ffff::1", "fd00:2::1"), true, 2)
	expect(t, m, "v6 outside /32 passes by ::/0", f6("fd00:2::1", "fd00:1::1"), false, 4)
	expect(t, m, "v6 both prefixes", f6("2001:db8::1", "2001:db8::8000:0:0:1"), true, 3)
	expect(t, m, "v6 destination in the other half of the /64", f6("2001:db8::1", "2001:db8::7fff:0:0:1"), false, 4)
	expect(t, m, "an IPv4 prefix never matches IPv6 and 0.0.0.0/0 no ARP", eth(bcast, macA, -1, 0x0806, make([]byte, 28)), false, -1)
	expect(t, m, "tagged IPv4", eth(macB, macA, 30, 0x0800, ip4("10.1.2.3", "1.1.1.1", 6, tcp(1, 2))), true, 0)
}

func TestProtocolsAndPorts(t *testing.T) {
	m := compile(t, Pass,
		Rule{Name: "dns", Action: Pass, Protocol: u8(ProtoUDP), DstPorts: ports(53, 53)},
		Rule{Name: "high-udp", Action: Drop, Protocol: u8(ProtoUDP), SrcPorts: ports(1000, 2000), DstPorts: ports(5000, 6000)},
		Rule{Name: "smtp", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(25, 25)},
		Rule{Name: "ping", Action: Drop, Protocol: u8(ProtoICMP)},
		Rule{Name: "ping6", Action: Drop, Protocol: u8(ProtoICMPv6)},
		Rule{Name: "gre", Action: Drop, Protocol: u8(47)},
		Rule{Name: "udp", Action: Drop, Protocol: u8(ProtoUDP)},
	).ForUser("u")
	u4 := func(sp, dp uint16) []byte {
		return eth(macB, macA, -1, 0x0800, ip4("10.0.0.1", "10.0.0.2", 17, udp(sp, dp)))
	}
	expect(t, m, "DNS passes before the udp drop", u4(40000, 53), false, 0)
	expect(t, m, "both ranges, lower edges", u4(1000, 5000), true, 1)
	expect(t, m, "both ranges, upper edges", u4(2000, 6000), true, 1)
	expect(t, m, "source just out of range", u4(2001, 5500), true, 6)
	expect(t, m, "destination just out of range", u4(1500, 4999), true, 6)
	expect(t, m, "TCP 25", tcp4("10.0.0.1", "10.0.0.2", 3333, 25), true, 2)
	expect(t, m, "TCP 53 is not the udp dns rule", tcp4("10.0.0.1", "10.0.0.2", 3333, 53), false, -1)
	expect(t, m, "ICMP", eth(macB, macA, -1, 0x0800, ip4("10.0.0.1", "10.0.0.2", 1, make([]byte, 8))), true, 3)
	expect(t, m, "ICMPv6", eth(macB, macA, -1, 0x86dd, ip6("fe80::1", "ff02::1", 58, make([]byte, 8))), true, 4)
	expect(t, m, "GRE by number", eth(macB, macA, -1, 0x0800, ip4("10.0.0.1", "10.0.0.2", 47, make([]byte, 8))), true, 5)

	// IPv6 extension headers are walked to the transport header.
	hbh := append([]byte{17, 0, 0, 0, 0, 0, 0, 0}, udp(1, 53)...)
	expect(t, m, "UDP behind hop-by-hop", eth(macB, macA, -1, 0x86dd, ip6("fd00::1", "fd00::2", 0, hbh)), false, 0)
	frag0 := append([]byte{17, 0, 0, 1, 0, 0, 0, 1}, udp(1500, 5500)...) // offset 0, more fragments
	expect(t, m, "first fragment has ports", eth(macB, macA, -1, 0x86dd, ip6("fd00::1", "fd00::2", 44, frag0)), true, 1)
	frag1 := append([]byte{17, 0, 0x05, 0xa8, 0, 0, 0, 1}, udp(1500, 5500)...) // offset 181*8
	expect(t, m, "a later fragment has no ports but a protocol", eth(macB, macA, -1, 0x86dd, ip6("fd00::1", "fd00::2", 44, frag1)), true, 6)
	v4frag := ip4("10.0.0.1", "10.0.0.2", 17, udp(40000, 53))
	v4frag[6], v4frag[7] = 0x00, 0x10 // offset 16*8: these bytes are payload, not a header
	expect(t, m, "IPv4 later fragment", eth(macB, macA, -1, 0x0800, v4frag), true, 6)
}

func TestFirstMatchWinsAndDefault(t *testing.T) {
	rules := []Rule{
		{Name: "allow-web", Action: Pass, Protocol: u8(ProtoTCP), DstPorts: ports(443, 443)},
		{Name: "deny-net", Action: Drop, DstCIDR: netip.MustParsePrefix("10.0.0.0/8")},
		{Name: "allow-net", Action: Pass, DstCIDR: netip.MustParsePrefix("10.0.0.0/8")},
	}
	for _, def := range []Action{Pass, Drop} {
		m := compile(t, def, rules...).ForUser("u")
		expect(t, m, "web to 10/8: the earlier pass wins", tcp4("192.168.0.1", "10.1.1.1", 1, 443), false, 0)
		expect(t, m, "ssh to 10/8: drop shadows the later pass", tcp4("192.168.0.1", "10.1.1.1", 1, 22), true, 1)
		expect(t, m, "no rule: the default", tcp4("192.168.0.1", "172.16.0.1", 1, 22), def == Drop, -1)
	}
	m := compile(t, Drop, Rule{Name: "all", Action: Pass}).ForUser("u")
	expect(t, m, "a rule with no match matches everything", eth(macB, macA, -1, 0x9000, nil), false, 0)
	expect(t, m, "even a runt", []byte{1, 2, 3}, false, 0)
}

func TestEmptyListCostsNothing(t *testing.T) {
	if m := compile(t, Pass).ForUser("u"); m != nil {
		t.Fatal("empty list with default Pass must give a nil matcher")
	}
	if m := compile(t, Pass, Rule{Name: "p", Action: Pass, Protocol: u8(6)}).ForUser("u"); m != nil {
		t.Fatal("a list that can only pass must give a nil matcher")
	}
	var p *Program
	if p.ForUser("u") != nil {
		t.Fatal("a nil program must give a nil matcher")
	}
	var m *Matcher
	if drop, rule := m.Match(tcp4("1.1.1.1", "2.2.2.2", 1, 2)); drop || rule != -1 {
		t.Fatal("a nil matcher must pass")
	}
	d := compile(t, Drop).ForUser("u")
	expect(t, d, "empty list with default Drop drops", tcp4("1.1.1.1", "2.2.2.2", 1, 2), true, -1)
}

func TestUsers(t *testing.T) {
	p := compile(t, Pass,
		Rule{Name: "alice-no-ssh", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(22, 22), Users: []string{"alice", "carol"}},
		Rule{Name: "bob-only-web", Action: Pass, Protocol: u8(ProtoTCP), DstPorts: ports(443, 443), Users: []string{"bob"}},
		Rule{Name: "bob-rest", Action: Drop, Users: []string{"bob"}},
		Rule{Name: "no-telnet", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(23, 23)},
	)
	ssh, web, telnet := tcp4("10.0.0.1", "10.0.0.2", 5, 22), tcp4("10.0.0.1", "10.0.0.2", 5, 443), tcp4("10.0.0.1", "10.0.0.2", 5, 23)
	alice, bob, dave := p.ForUser("alice"), p.ForUser("bob"), p.ForUser("dave")
	expect(t, alice, "alice ssh", ssh, true, 0)
	expect(t, p.ForUser("carol"), "carol ssh", ssh, true, 0)
	expect(t, alice, "alice telnet", telnet, true, 3)
	expect(t, alice, "alice web", web, false, -1)
	expect(t, bob, "bob web", web, false, 1)
	expect(t, bob, "bob ssh", ssh, true, 2)
	expect(t, dave, "dave ssh: alice's rule is not his", ssh, false, -1)
	expect(t, dave, "dave telnet", telnet, true, 3)
	if p.ForUser("alice") != alice {
		t.Error("a user's sessions must share one matcher")
	}
	if p.ForUser("erin") != dave {
		t.Error("users no rule names must share the everyone matcher")
	}
	if m := compile(t, Pass, Rule{Name: "x", Action: Drop, Users: []string{"x"}}).ForUser("y"); m != nil {
		t.Error("a user with no rule and default Pass must get a nil matcher")
	}
}

func TestDropCounters(t *testing.T) {
	p := compile(t, Drop,
		Rule{Name: "web", Action: Pass, Protocol: u8(ProtoTCP), DstPorts: ports(443, 443)},
		Rule{Name: "ssh", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(22, 22)},
	)
	a, b := p.ForUser("a"), p.ForUser("b")
	for range 3 {
		a.Match(tcp4("1.1.1.1", "2.2.2.2", 1, 22))
		b.Match(tcp4("1.1.1.1", "2.2.2.2", 1, 22))
		a.Match(tcp4("1.1.1.1", "2.2.2.2", 1, 443))
	}
	b.Match(tcp4("1.1.1.1", "2.2.2.2", 1, 80))
	if got := [3]uint64{p.Dropped(0), p.Dropped(1), p.Dropped(-1)}; got != [3]uint64{0, 6, 1} {
		t.Errorf("drops web, ssh, default = %v, want [0 6 1]", got)
	}
	// A caller counting a batch's run of drops itself.
	if drop, rule := a.Decide(tcp4("1.1.1.1", "2.2.2.2", 1, 22)); !drop || rule != 1 {
		t.Fatalf("Decide: drop=%v rule=%d", drop, rule)
	}
	if p.Dropped(1) != 6 {
		t.Error("Decide must not count")
	}
	a.AddDrops(1, 10)
	a.AddDrops(-1, 2)
	if p.Dropped(1) != 16 || p.Dropped(-1) != 3 {
		t.Errorf("after AddDrops: ssh %d (want 16), default %d (want 3)", p.Dropped(1), p.Dropped(-1))
	}
	if p.Name(1) != "ssh" || p.Name(-1) != "" || p.Len() != 2 || p.Default() != Drop {
		t.Error("program accessors")
	}
}

// TestTruncatedFrames: every prefix of well-formed frames, and of frames with
// lying length fields, is decided without panicking, and only by rules that need
// nothing past the cut.
func TestTruncatedFrames(t *testing.T) {
	p := compile(t, Pass,
		Rule{Name: "tcp-port", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(80, 80)},
		Rule{Name: "v6-src", Action: Drop, SrcCIDR: netip.MustParsePrefix("fd00::/8")},
		Rule{Name: "udp", Action: Drop, Protocol: u8(ProtoUDP)},
		Rule{Name: "vlan", Action: Drop, VLAN: u16(0), EtherType: 0x0800},
		Rule{Name: "mac", Action: Pass, SrcMAC: mustMAC(t, macA)},
		Rule{Name: "all", Action: Drop},
	)
	m := p.ForUser("u")
	hbh := append([]byte{17, 0, 0, 0, 0, 0, 0, 0}, udp(1, 53)...)
	frames := [][]byte{
		tcp4("10.0.0.1", "10.0.0.2", 1, 80),
		eth(macB, macA, 5, 0x86dd, ip6("fd00::1", "fd00::2", 0, hbh)),
		eth(macB, "02:00:00:00:00:99", 5, 0x0800, ip4("10.0.0.1", "10.0.0.2", 6, tcp(1, 80))),
	}
	badIHL := tcp4("10.0.0.1", "10.0.0.2", 1, 80)
	badIHL[14] = 0x4f // a 60-byte header in a frame that has 20
	frames = append(frames, badIHL)
	badExt := eth(macB, macA, -1, 0x86dd, ip6("fd00::1", "fd00::2", 60, []byte{17, 255, 0, 0}))
	frames = append(frames, badExt)
	for fi, f := range frames {
		for n := 0; n <= len(f); n++ {
			cut := f[:n]
			drop, rule := m.Match(cut)
			rd, rr := reference(m, cut)
			if drop != rd || rule != rr {
				t.Fatalf("frame %d cut to %d bytes: drop=%v rule=%d, reference drop=%v rule=%d", fi, n, drop, rule, rd, rr)
			}
		}
	}
	expect(t, m, "a runt matches only the rule that tests nothing", []byte{0xff}, true, 5)
	cut := tcp4("10.0.0.1", "10.0.0.2", 1, 80)[:14+20+3]
	expect(t, m, "ports cut off: the L2 rule decides", cut, true, 3)
	expect(t, m, "IHL beyond the frame: no ports", badIHL, true, 3)
	badIHL[14] = 0x44 // IHL below 5: not an IPv4 header at all
	expect(t, m, "IHL below 5: the L2 rule still decides", badIHL, true, 3)
	expect(t, m, "tagged frame cut in the tag: only the MAC rule", eth(macB, macA, 5, 0x0800, nil)[:16], false, 4)
	expect(t, m, "extension header beyond the frame: no protocol, but the address", badExt, true, 1)
}

// TestSuperFrame: a 64 KiB TCP super-frame is matched on its headers.
func TestSuperFrame(t *testing.T) {
	m := compile(t, Pass, Rule{Name: "bulk", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(5201, 5201)}).ForUser("u")
	f := eth(macB, macA, -1, 0x0800, ip4("10.0.0.1", "10.0.0.2", 6, append(tcp(40000, 5201), make([]byte, 65000)...)))
	f[14+2], f[14+3] = 0, 0 // as GSO senders may leave the total length
	expect(t, m, "super-frame", f, true, 0)
}

func TestCompileErrors(t *testing.T) {
	many := make([]Rule, MaxRules+1)
	for i := range many {
		many[i] = Rule{Name: string(rune('a'+i%26)) + strings.Repeat("x", i/26)}
	}
	cases := []struct {
		rules []Rule
		want  string
	}{
		{many, "at most 256"},
		{[]Rule{{Name: "a"}, {Name: ""}}, `access rule 1 (""): the rule has no name`},
		{[]Rule{{Name: "a"}, {Name: "b"}, {Name: "a"}}, `access rule 2 ("a"): rule 0 has the same name`},
		{[]Rule{{Name: "p", DstPorts: ports(80, 80)}}, `access rule 0 ("p"): dstPorts needs protocol tcp or udp`},
		{[]Rule{{Name: "p", Protocol: u8(ProtoICMP), SrcPorts: ports(1, 2)}}, "srcPorts needs protocol tcp or udp"},
		{[]Rule{{Name: "r", Protocol: u8(ProtoTCP), DstPorts: ports(2000, 1000)}}, "dstPorts 2000-1000 runs backwards; write 1000-2000"},
		{[]Rule{{Name: "c", SrcCIDR: netip.MustParsePrefix("10.0.0.5/8")}}, "srcCIDR 10.0.0.5/8 has address bits set after the prefix length; write 10.0.0.0/8"},
		{[]Rule{{Name: "f", SrcCIDR: netip.MustParsePrefix("10.0.0.0/8"), DstCIDR: netip.MustParsePrefix("fd00::/8")}}, "different families"},
		{[]Rule{{Name: "v", VLAN: u16(4095)}}, "vlan 4095"},
		{[]Rule{{Name: "e", EtherType: 1500}}, "802.3 length"},
		{[]Rule{{Name: "a", Action: 7}}, "use Pass or Drop"},
	}
	for _, tc := range cases {
		_, err := Compile(tc.rules, Pass)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error saying %q", err, tc.want)
		}
	}
	if _, err := Compile(nil, 9); err == nil {
		t.Error("a bad default action compiled")
	}
}

func TestParsers(t *testing.T) {
	if m, err := ParseMAC("02:00:5e:ab:cd:ef/ff:ff:ff:00:00:00"); err != nil || m.Addr != [6]byte{2, 0, 0x5e, 0, 0, 0} {
		t.Errorf("masked MAC: %v %v", m, err)
	}
	if m, err := ParseMAC("02-00:5e-00:00-01"); err != nil || m.Addr != [6]byte{2, 0, 0x5e, 0, 0, 1} {
		t.Errorf("mixed separators, as the CRD admits: %v %v", m, err)
	}
	for _, bad := range []string{"02:00:5e:00:01", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "02:00:5e:00:00:01/ff", "x"} {
		if _, err := ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q) accepted", bad)
		}
	}
	for s, want := range map[string]uint16{"ipv4": 0x0800, "IPv6": 0x86dd, "arp": 0x0806, "0x88cc": 0x88cc, "34958": 0x888e} {
		if v, err := ParseEtherType(s); err != nil || v != want {
			t.Errorf("ParseEtherType(%q) = %#x, %v", s, v, err)
		}
	}
	for _, bad := range []string{"1500", "0x05ff", "65536", "ip"} {
		if _, err := ParseEtherType(bad); err == nil {
			t.Errorf("ParseEtherType(%q) accepted", bad)
		}
	}
	for s, want := range map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "132": 132} {
		if v, err := ParseProtocol(s); err != nil || v != want {
			t.Errorf("ParseProtocol(%q) = %d, %v", s, v, err)
		}
	}
	if _, err := ParseProtocol("256"); err == nil {
		t.Error("protocol 256 accepted")
	}
	if r, err := ParsePorts("1000-2000"); err != nil || r != (PortRange{1000, 2000}) {
		t.Errorf("range: %v %v", r, err)
	}
	if r, err := ParsePorts("443"); err != nil || r != (PortRange{443, 443}) {
		t.Errorf("single: %v %v", r, err)
	}
	for _, bad := range []string{"2000-1000", "70000", "1-", "a"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("ParsePorts(%q) accepted", bad)
		}
	}
}
