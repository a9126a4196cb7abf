// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
)

func is(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
func ii(i int) *intstr.IntOrString    { v := intstr.FromInt32(int32(i)); return &v }
func i32(v int32) *int32              { return &v }

func TestCompileSpec(t *testing.T) {
	spec := &v1alpha1.VirtualHubSpec{
		AccessList: []v1alpha1.AccessRule{
			{Name: "dns", Action: v1alpha1.AccessPass, Protocol: is("udp"), DstPorts: ii(53)},
			{Name: "no-smb", Action: v1alpha1.AccessDrop, Protocol: ii(6), DstPorts: is("135-139")},
			{Name: "lldp", Action: v1alpha1.AccessDrop, EtherType: is("0x88cc"), VLAN: i32(0)},
			{Name: "eapol", Action: v1alpha1.AccessDrop, EtherType: ii(0x888e)},
			{Name: "spoof", Action: v1alpha1.AccessDrop, SrcMAC: "02:00:5e:00:00:00/ff:ff:ff:00:00:00", DstMAC: "broadcast"},
			{Name: "bob-lan", Action: v1alpha1.AccessPass, DstCIDR: "10.0.0.0/8", SrcCIDR: "10.9.0.0/16", Users: []string{"bob"}},
			{Name: "ula", Action: v1alpha1.AccessDrop, DstCIDR: "fd00::/8"},
			{Name: "lan", Action: v1alpha1.AccessDrop, DstCIDR: "10.0.0.0/8"},
		},
		AccessListDefault: v1alpha1.AccessPass,
	}
	p, err := CompileSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := p.ForUser("alice"), p.ForUser("bob")
	expect(t, alice, "dns", eth(macB, macA, -1, 0x0800, ip4("10.9.0.1", "10.0.0.53", 17, udp(999, 53))), false, 0)
	expect(t, alice, "smb", tcp4("10.9.0.1", "8.8.8.8", 1, 137), true, 1)
	expect(t, alice, "lldp", eth("01:80:c2:00:00:0e", macA, -1, 0x88cc, nil), true, 2)
	expect(t, alice, "eapol", eth("01:80:c2:00:00:03", macA, 3, 0x888e, nil), true, 3)
	expect(t, alice, "spoofed broadcast", eth(bcast, "02:00:5e:12:34:56", -1, 0x0806, nil), true, 4)
	expect(t, alice, "alice to the LAN", tcp4("10.9.0.1", "10.1.1.1", 1, 22), true, 7)
	expect(t, bob, "bob to the LAN", tcp4("10.9.0.1", "10.1.1.1", 1, 22), false, 5)
	expect(t, bob, "ULA", eth(macB, macA, -1, 0x86dd, ip6("fd01::1", "fd02::1", 6, tcp(1, 2))), true, 6)

	if p, err := CompileSpec(&v1alpha1.VirtualHubSpec{}); err != nil || p.ForUser("x") != nil {
		t.Errorf("a hub without an access list: %v, %v", p, err)
	}
	if p, err := CompileSpec(&v1alpha1.VirtualHubSpec{AccessListDefault: v1alpha1.AccessDrop}); err != nil || p.ForUser("x") == nil {
		t.Errorf("default Drop must give a matcher: %v", err)
	}
}

func TestFromAPIErrors(t *testing.T) {
	cases := []struct {
		r    v1alpha1.AccessRule
		want string
	}{
		{v1alpha1.AccessRule{Name: "m", Action: "Drop", SrcMAC: "02:00"}, `access rule 1 ("m"): srcMAC: MAC "02:00"`},
		{v1alpha1.AccessRule{Name: "e", Action: "Drop", EtherType: ii(100)}, `access rule 1 ("e"): etherType "100"`},
		{v1alpha1.AccessRule{Name: "p", Action: "Drop", Protocol: is("sctp")}, `protocol "sctp"`},
		{v1alpha1.AccessRule{Name: "r", Action: "Drop", Protocol: is("tcp"), SrcPorts: is("9-1")}, "srcPorts: ports \"9-1\": the range runs backwards; write 1-9"},
		{v1alpha1.AccessRule{Name: "c", Action: "Drop", DstCIDR: "10.0.0.0"}, `dstCIDR "10.0.0.0"`},
		{v1alpha1.AccessRule{Name: "a", Action: "Reject"}, `action "Reject": use Pass or Drop`},
		{v1alpha1.AccessRule{Name: "n"}, "action is required"},
		{v1alpha1.AccessRule{Name: "v", Action: "Drop", VLAN: i32(5000)}, "vlan 5000"},
		{v1alpha1.AccessRule{Name: "h", Action: "Drop", SrcCIDR: "10.0.0.1/8"}, "write 10.0.0.0/8"},
	}
	for _, tc := range cases {
		list := []v1alpha1.AccessRule{{Name: "ok", Action: "Pass"}, tc.r}
		_, err := CompileSpec(&v1alpha1.VirtualHubSpec{AccessList: list})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error saying %q", err, tc.want)
		}
	}
}

// TestMatchAllocatesNothing: the per-frame path allocates nothing, on every
// layer it may stop at.
func TestMatchAllocatesNothing(t *testing.T) {
	m := compile(t, Drop, benchRules(100)...).ForUser("alice")
	frames := [][]byte{benchFrame("172.20.1.1", 8443), benchFrame("1.1.1.1", 80), {1, 2}, eth(macB, macA, 5, 0x86dd, ip6("fd00::1", "fd00::2", 0, nil))}
	for _, f := range frames {
		if n := testing.AllocsPerRun(100, func() { m.Match(f) }); n != 0 {
			t.Errorf("Match allocates %v per frame", n)
		}
	}
}

// TestConcurrentSessions: sessions of several users log in and match at once
// (run with -race); the counters add up exactly.
func TestConcurrentSessions(t *testing.T) {
	p := compile(t, Pass,
		Rule{Name: "ssh", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(22, 22), Users: []string{"u0", "u1", "u2"}},
		Rule{Name: "telnet", Action: Drop, Protocol: u8(ProtoTCP), DstPorts: ports(23, 23)},
	)
	ssh, telnet := tcp4("1.1.1.1", "2.2.2.2", 1, 22), tcp4("1.1.1.1", "2.2.2.2", 1, 23)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			m := p.ForUser("u" + string(rune('0'+g%4)))
			for range 1000 {
				m.Match(ssh)
				m.Match(telnet)
			}
		})
	}
	wg.Wait()
	if p.Dropped(0) != 6000 || p.Dropped(1) != 8000 {
		t.Errorf("drops ssh %d (want 6000: users u0-u2, 2 sessions each), telnet %d (want 8000)", p.Dropped(0), p.Dropped(1))
	}
}
