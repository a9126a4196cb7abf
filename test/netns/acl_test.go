// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package netns

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// setHubField sets field of the hubs named in values in the member config
// writeConfig wrote (a hub's dhcp pool, its access list, …).
func (e *env) setHubField(field string, values map[string]any) {
	raw, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		e.t.Fatal(err)
	}
	for _, h := range cfg["hubs"].([]any) {
		h := h.(map[string]any)
		if v, ok := values[h["name"].(string)]; ok {
			h[field] = v
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.config = e.file("member.yaml", out)
}

// memberMetric reads one series of the member's metrics endpoint, inside its
// namespace (bash's /dev/tcp: no curl needed); -1 when it is absent.
func (e *env) memberMetric(t *testing.T, series string) int {
	t.Helper()
	out, err := e.inNS(e.member, 5*time.Second, "bash", "-c",
		`exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3`)
	if err != nil {
		t.Logf("reading the member's metrics: %v", err)
		return -1
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// snmp reads counter name of protocol line proto ("Icmp:", "Udp:") from
// ns's /proc/net/snmp, which is per network namespace: a frame the access
// list dropped never reaches these counters.
func (e *env) snmp(t *testing.T, ns, proto, name string) int {
	t.Helper()
	out, err := e.inNS(ns, 5*time.Second, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatalf("reading %s's /proc/net/snmp: %v", ns, err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != proto {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, n := range names {
			if n == name && i+1 < len(f) {
				v, _ := strconv.Atoi(f[i+1])
				return v
			}
		}
	}
	t.Fatalf("no %s %s in %s's /proc/net/snmp:\n%s", proto, name, ns, out)
	return 0
}

// TestAccessList: a hub's access list applied to real clients' traffic
// through their TAPs. Rules are ordered (alice's SSH passes before everyone's
// is dropped) and match each kind but VLAN: IPv4 and IPv6 prefixes, IP
// protocol, TCP and UDP ports, EtherType, source and destination MAC, and
// the session's user. (This machine's kernel has no 802.1Q interfaces; VLAN
// matching is tested on frames in pkg/acl and pkg/member.) A dropped frame never reaches the other TAP (the
// receiver's kernel counts no echo request or datagram), what no rule drops
// arrives, and the member counts each rule's drops in its metrics.
func TestAccessList(t *testing.T) {
	e := newEnv(t)
	nsA, nsB := e.clientNS("acl-a", 1), e.clientNS("acl-b", 2)
	nsM, nsD := e.clientNS("acl-m", 3), e.clientNS("acl-d", 4)
	addr := map[string]string{nsA: "10.61.0.1", nsB: "10.61.0.2", nsM: "10.61.0.3", nsD: "10.61.0.4"}
	e.writeConfig(map[string]map[string]string{
		"lab": {"alice": "alice-pw", "bob": "bob-pw", "mallory": "mallory-pw", "dave": "dave-pw"},
	}, []string{memberAddr(1), memberAddr(2), memberAddr(3), memberAddr(4)})
	e.setHubField("accessList", map[string]any{"lab": []map[string]any{
		{"name": "ssh-from-alice", "action": "Pass", "srcCIDR": "10.61.0.1/32", "protocol": "tcp", "dstPorts": 22},
		{"name": "no-ssh", "action": "Drop", "protocol": "tcp", "dstPorts": 22},
		{"name": "no-icmp-to-bob", "action": "Drop", "protocol": "icmp", "dstCIDR": "10.61.0.2/32"},
		{"name": "mallory-no-ipv4", "action": "Drop", "users": []string{"mallory"}, "etherType": "ipv4"},
		{"name": "no-v6-to-dave", "action": "Drop", "dstCIDR": "fd61::4/128"},
		{"name": "no-mdns", "action": "Drop", "protocol": "udp", "dstPorts": 5353},
		// UDP only, so their ARP and pings still work for the tests above.
		{"name": "no-from-bob-mac", "action": "Drop", "srcMAC": "02:61:00:00:00:02", "protocol": "udp"},
		{"name": "no-to-mallory-mac", "action": "Drop", "dstMAC": "02:61:00:00:00:03", "protocol": "udp"},
	}})
	member := e.start("member", e.member, "member", "--config", e.config)
	eventually(t, 20*time.Second, "member listening", func() bool { return strings.Contains(member.out.String(), "listening") })
	for i, c := range []struct{ ns, user string }{{nsA, "alice"}, {nsB, "bob"}, {nsM, "mallory"}, {nsD, "dave"}} {
		e.start("client "+c.user, c.ns, "connect", "--server", memberAddr(i+1)+":8443", "--hub", "lab",
			"--user", c.user, "--password-file", e.file(c.user+"-pw", []byte(c.user+"-pw\n")), "--ca-file", e.caFile,
			"--tap", "hf0", "--address", addr[c.ns]+"/24")
	}
	ping := func(ns, to string) bool {
		_, err := e.inNS(ns, 5*time.Second, "ping", "-c1", "-W0.3", "-n", "-q", to)
		return err == nil
	}
	drops := func(rule string) int {
		return e.memberMetric(t, fmt.Sprintf(`hubfleet_server_access_list_drops_total{hub="lab",hub_namespace="",rule=%q}`, rule))
	}
	// Known MACs for the MAC rules: bob's and mallory's TAPs, once they exist.
	for ns, mac := range map[string]string{nsB: "02:61:00:00:00:02", nsM: "02:61:00:00:00:03"} {
		eventually(t, 30*time.Second, "TAP hf0 in "+ns, func() bool {
			_, err := e.inNS(ns, 5*time.Second, "ip", "link", "show", "hf0")
			return err == nil
		})
		e.ip("-n", ns, "link", "set", "hf0", "address", mac)
	}
	// What passes: alice and dave reach each other (ARP and ICMP).
	eventually(t, 30*time.Second, "alice pings dave", func() bool { return ping(nsA, addr[nsD]) })

	t.Run("IPv4PrefixAndProtocol", func(t *testing.T) {
		before := e.snmp(t, nsB, "Icmp:", "InEchos")
		for _, from := range []string{nsA, nsD} {
			if ping(from, addr[nsB]) {
				t.Errorf("%s pinged bob through no-icmp-to-bob", from)
			}
		}
		if got := e.snmp(t, nsB, "Icmp:", "InEchos") - before; got != 0 {
			t.Errorf("bob's kernel received %d echo requests the access list should have dropped", got)
		}
		if n := drops("no-icmp-to-bob"); n < 2 {
			t.Errorf("no-icmp-to-bob counts %d drops, want at least the 2 requests", n)
		}
	})

	t.Run("OrderAndTCPPort", func(t *testing.T) {
		if _, err := exec.LookPath("iperf3"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("iperf3 is missing: .ci/run installs it (apt-get install iperf3)")
			}
			t.Skip("needs iperf3 as a TCP listener: apt-get install iperf3")
		}
		// iperf3 as the TCP server on port 22 in dave's namespace; a client
		// only opens and closes a connection.
		srv := exec.Command("ip", "netns", "exec", nsD, "iperf3", "-s", "-B", addr[nsD], "-p", "22")
		srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-srv.Process.Pid, syscall.SIGKILL); srv.Wait() })
		connects := func(from string) bool {
			_, err := e.inNS(from, 5*time.Second, "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/"+addr[nsD]+"/22")
			return err == nil
		}
		eventually(t, 10*time.Second, "alice reaches dave's port 22 (ssh-from-alice comes before no-ssh)", func() bool { return connects(nsA) })
		if connects(nsB) {
			t.Error("bob reached dave's port 22 through no-ssh")
		}
		if n := drops("no-ssh"); n < 1 {
			t.Errorf("no-ssh counts %d drops, want bob's SYNs", n)
		}
		if n := drops("ssh-from-alice"); n > 0 {
			t.Errorf("a Pass rule counts %d drops", n)
		}
	})

	t.Run("PerUserEtherType", func(t *testing.T) {
		before := e.snmp(t, nsD, "Icmp:", "InEchos")
		if ping(nsM, addr[nsD]) {
			t.Error("mallory pinged dave through mallory-no-ipv4")
		}
		if got := e.snmp(t, nsD, "Icmp:", "InEchos") - before; got != 0 {
			t.Errorf("dave's kernel received %d of mallory's echo requests", got)
		}
		// Her ARP is not IPv4, so it passes: she learned dave's MAC.
		eventually(t, 5*time.Second, "mallory's ARP for dave answered", func() bool {
			out, _ := e.inNS(nsM, 5*time.Second, "ip", "neigh", "show", addr[nsD])
			return strings.Contains(out, "lladdr")
		})
		if n := drops("mallory-no-ipv4"); n < 1 {
			t.Errorf("mallory-no-ipv4 counts %d drops", n)
		}
		// Alice's IPv4 is untouched by mallory's rule.
		if !ping(nsA, addr[nsD]) {
			t.Error("alice can no longer ping dave")
		}
	})

	t.Run("IPv6Prefix", func(t *testing.T) {
		// Addresses without DAD; neighbour discovery goes to multicast
		// addresses, so only what is sent to dave's address is dropped.
		for ns, a := range map[string]string{nsA: "fd61::1", nsB: "fd61::2", nsD: "fd61::4"} {
			e.ip("-n", ns, "-6", "addr", "add", a+"/64", "dev", "hf0", "nodad")
		}
		ping6 := func(to string) bool {
			_, err := e.inNS(nsA, 5*time.Second, "ping", "-6", "-c1", "-W0.5", "-n", "-q", to)
			return err == nil
		}
		eventually(t, 10*time.Second, "alice pings bob over IPv6", func() bool { return ping6("fd61::2") })
		if ping6("fd61::4") {
			t.Error("alice pinged dave's fd61::4 through no-v6-to-dave")
		}
		if n := drops("no-v6-to-dave"); n < 1 {
			t.Errorf("no-v6-to-dave counts %d drops", n)
		}
	})

	t.Run("UDPPort", func(t *testing.T) {
		// Nothing listens on dave's side: a datagram that arrives counts in
		// his kernel's Udp NoPorts.
		send := func(port int) {
			for range 3 {
				if _, err := e.inNS(nsA, 5*time.Second, "bash", "-c", fmt.Sprintf("echo x > /dev/udp/%s/%d", addr[nsD], port)); err != nil {
					t.Fatal(err)
				}
			}
		}
		before := e.snmp(t, nsD, "Udp:", "NoPorts")
		send(5353)
		send(5354)
		eventually(t, 5*time.Second, "the 3 datagrams to port 5354 arrive", func() bool { return e.snmp(t, nsD, "Udp:", "NoPorts")-before >= 3 })
		if got := e.snmp(t, nsD, "Udp:", "NoPorts") - before; got != 3 {
			t.Errorf("dave's kernel got %d datagrams, want only the 3 to port 5354", got)
		}
		if n := drops("no-mdns"); n != 3 {
			t.Errorf("no-mdns counts %d drops, want 3", n)
		}
	})

	t.Run("MACs", func(t *testing.T) {
		// Bob's datagrams (source MAC) and datagrams to mallory (destination
		// MAC) are dropped by the last rules: bob's datagrams to dave never
		// arrive, nor alice's to mallory, while alice's to dave do.
		udpTo := func(from, to string) {
			if _, err := e.inNS(from, 5*time.Second, "bash", "-c", "echo x > /dev/udp/"+to+"/5354"); err != nil {
				t.Fatal(err)
			}
		}
		d0, m0 := e.snmp(t, nsD, "Udp:", "NoPorts"), e.snmp(t, nsM, "Udp:", "NoPorts")
		for range 3 {
			udpTo(nsB, addr[nsD])
			udpTo(nsA, addr[nsM])
		}
		udpTo(nsA, addr[nsD])
		eventually(t, 5*time.Second, "alice's datagram reaches dave", func() bool { return e.snmp(t, nsD, "Udp:", "NoPorts") > d0 })
		if got := e.snmp(t, nsD, "Udp:", "NoPorts") - d0; got != 1 {
			t.Errorf("dave's kernel got %d datagrams, want alice's 1 and none of bob's", got)
		}
		if got := e.snmp(t, nsM, "Udp:", "NoPorts") - m0; got != 0 {
			t.Errorf("mallory's kernel got %d datagrams through no-to-mallory-mac", got)
		}
		for _, rule := range []string{"no-from-bob-mac", "no-to-mallory-mac"} {
			if n := drops(rule); n < 3 {
				t.Errorf("%s counts %d drops, want at least 3", rule, n)
			}
		}
	})
}
