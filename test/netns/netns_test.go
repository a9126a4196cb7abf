// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package netns is the end-to-end test of the data plane on one machine: a real
// `hubfleet member` and `hubfleet connect` clients, each in its own network
// namespace, carrying pings between TAP devices through the hub. It needs root,
// /dev/net/tun, iproute2 and ping, and skips with the reason otherwise.
//
//	sudo go test ./test/netns/ -v
package netns

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Overlay addresses: one /24 for everyone, so that only hub isolation keeps
// red's client C from reaching blue's A and B.
const (
	addrA = "172.31.77.1"
	addrB = "172.31.77.2"
	addrC = "172.31.77.3"
	addrD = "172.31.77.4"
	addrL = "172.31.77.9" // a host on the LAN behind the bridge
)

func TestDataPlaneThroughNamespaces(t *testing.T) {
	e := newEnv(t)
	nsA, nsB, nsC, nsD := e.clientNS("a", 1), e.clientNS("b", 2), e.clientNS("c", 3), e.clientNS("d", 4)
	// Red's hosts send nothing unprompted (no IPv6 router solicitations, MLD or
	// DAD), so any frame on C's TAP during the isolation check is a leak.
	for _, ns := range []string{nsC, nsD} {
		for _, key := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
			if out, err := e.inNS(ns, 5*time.Second, "sysctl", "-qw", key); err != nil {
				t.Fatalf("sysctl %s in %s: %v: %s", key, ns, err, out)
			}
		}
	}
	e.writeConfig(map[string]map[string]string{
		"blue": {"alice": "alice-pw", "bob": "bob-pw", "site": "site-pw"},
		"red":  {"carol": "carol-pw", "dave": "dave-pw"},
	}, []string{memberAddr(1), memberAddr(2), memberAddr(3), memberAddr(4), memberAddr(5)})
	pwFile := func(pw string) string { return e.file(pw, []byte(pw+"\n")) }
	connect := func(name, ns string, i int, hub, user, pw, addr string) *proc {
		return e.start(name, ns, "connect", "--server", memberAddr(i)+":8443", "--hub", hub,
			"--user", user, "--password-file", pwFile(pw), "--ca-file", e.caFile,
			"--tap", "hf0", "--address", addr+"/24")
	}
	memberArgs := []string{"member", "--config", e.config}
	member := e.start("member", e.member, memberArgs...)
	a := connect("client A", nsA, 1, "blue", "alice", "alice-pw", addrA)
	b := connect("client B", nsB, 2, "blue", "bob", "bob-pw", addrB)
	c := connect("client C", nsC, 3, "red", "carol", "carol-pw", addrC)
	d := connect("client D", nsD, 4, "red", "dave", "dave-pw", addrD)

	ping := func(ns, to string) bool {
		_, err := e.inNS(ns, 5*time.Second, "ping", "-c1", "-W0.3", "-n", "-q", to)
		return err == nil
	}
	eventually(t, 30*time.Second, "A pings B through hub blue", func() bool { return ping(nsA, addrB) })
	eventually(t, 10*time.Second, "B pings A through hub blue", func() bool { return ping(nsB, addrA) })
	// C and D reach each other, so C's silence below is isolation, not a dead
	// client.
	eventually(t, 10*time.Second, "C pings D through hub red", func() bool { return ping(nsC, addrD) })

	t.Run("RTT", func(t *testing.T) {
		out, err := e.inNS(nsA, 30*time.Second, "ping", "-c50", "-i0.02", "-n", "-q", addrB)
		if err != nil {
			t.Fatalf("ping A→B: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no RTT in ping output:\n%s", out)
		}
		t.Logf("ping RTT A→B through the hub (50 pings): min %s avg %s max %s ms", m[1], m[2], m[3])
	})

	t.Run("HubIsolation", func(t *testing.T) {
		rxC := func() uint64 {
			out, err := e.inNS(nsC, 5*time.Second, "cat", "/sys/class/net/hf0/statistics/rx_packets")
			if err != nil {
				t.Fatalf("reading C's TAP counters: %v: %s", err, out)
			}
			n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := rxC()
		// Forget the neighbours so A and B must ARP (broadcast) again, then send
		// unicast between them and ARP for C's address from A.
		for _, ns := range []string{nsA, nsB} {
			e.inNS(ns, 5*time.Second, "ip", "neigh", "flush", "dev", "hf0")
		}
		for range 3 {
			if !ping(nsA, addrB) || !ping(nsB, addrA) {
				t.Fatal("A and B lost each other during the isolation check")
			}
		}
		if ping(nsA, addrC) {
			t.Fatal("A (hub blue) reached C (hub red)")
		}
		if after := rxC(); after != before {
			t.Fatalf("C's TAP received %d frames while only blue had traffic: frames leak between hubs", after-before)
		}
		t.Logf("C's TAP received no frame (rx_packets stays %d) while A and B ARPed and pinged", before)
		if ping(nsC, addrA) || ping(nsC, addrB) {
			t.Fatal("C (hub red) reached a client of hub blue")
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		bad := e.start("client with a wrong password", nsA, "connect", "--server", memberAddr(1)+":8443",
			"--hub", "blue", "--user", "alice", "--password-file", pwFile("not-alices"), "--ca-file", e.caFile, "--tap", "hfbad")
		if code := bad.wait(t, 30*time.Second); code != 3 {
			t.Fatalf("exit code %d, want 3 (bad credentials); output:\n%s", code, bad.out)
		}
		if !strings.Contains(bad.out.String(), "bad credentials") {
			t.Fatalf("output does not say bad credentials:\n%s", bad.out)
		}
	})

	t.Run("Bridge", func(t *testing.T) {
		// A site: host L on a LAN whose router E runs `hubfleet bridge` with the
		// LAN's plain interface, so a bridge hfbr-lan0 joins it to hub blue.
		nsE, nsL := e.clientNS("e", 5), e.newNS("l")
		e.ip("-n", nsE, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", nsL)
		e.ip("-n", nsL, "addr", "add", addrL+"/24", "dev", "eth0")
		e.ip("-n", nsL, "link", "set", "eth0", "up")
		br := e.start("bridge E", nsE, "bridge", "--server", memberAddr(5)+":8443", "--hub", "blue",
			"--user", "site", "--password-file", pwFile("site-pw"), "--ca-file", e.caFile,
			"--tap", "hf0", "--bridge", "lan0")
		took := eventually(t, 20*time.Second, "A pings LAN host L through the hub and the bridge", func() bool { return ping(nsA, addrL) })
		t.Logf("bridge up and L reachable from A after %v", took.Round(time.Millisecond))
		eventually(t, 10*time.Second, "L pings B", func() bool { return ping(nsL, addrB) })
		if out, _ := e.inNS(nsE, 5*time.Second, "ip", "-o", "link", "show", "master", "hfbr-lan0"); !strings.Contains(out, "lan0") || !strings.Contains(out, "hf0") {
			t.Fatalf("bridge hfbr-lan0 ports are %q, want lan0 and hf0", out)
		}
		br.signal(syscall.SIGTERM)
		if code := br.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("bridge exit code %d after SIGTERM, want 0:\n%s", code, br.out)
		}
	})

	// restart replaces the member after stop and returns how long A→B pings take
	// to resume from the new member's start.
	restart := func(t *testing.T, stop syscall.Signal) time.Duration {
		member.signal(stop)
		member.wait(t, 15*time.Second)
		member = e.start("member (restarted)", e.member, memberArgs...)
		return eventually(t, 10*time.Second, "A pings B after the member restart", func() bool { return ping(nsA, addrB) })
	}
	clientsStayed := func(t *testing.T) {
		for _, p := range []*proc{a, b, c, d} {
			if !p.running() {
				t.Fatalf("%s exited; clients must survive a member restart:\n%s", p.name, p.out)
			}
		}
	}

	t.Run("MemberKilled", func(t *testing.T) {
		took := restart(t, syscall.SIGKILL)
		t.Logf("after SIGKILL and restart of the member, A→B pings resumed %v after the new member started", took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Fatalf("pings resumed only after %v, want within 3s of the restart", took)
		}
		eventually(t, 10*time.Second, "B pings A after the restart", func() bool { return ping(nsB, addrA) })
		clientsStayed(t)
	})

	t.Run("MemberTerminated", func(t *testing.T) {
		lostBefore := strings.Count(a.out.String(), "member shutting down")
		took := restart(t, syscall.SIGTERM)
		t.Logf("after SIGTERM and restart of the member, A→B pings resumed %v after the new member started", took.Round(time.Millisecond))
		if strings.Count(a.out.String(), "member shutting down") == lostBefore {
			t.Fatalf("client A did not report the member's Shutdown:\n%s", a.out)
		}
		if took > 3*time.Second {
			t.Fatalf("pings resumed only after %v, want within 3s of the restart", took)
		}
		clientsStayed(t)
	})
}
