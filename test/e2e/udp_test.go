// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestUDPThroughService: two clients of a static hub connect with --udp to
// the VPNCluster's client Service (its ClusterIP: the Service exposes the
// VPN port for TCP and UDP with one number). kube-proxy balances each
// client's TLS connection and its UDP flow on their own, so a client's
// datagrams often reach another member than its session's; the members
// forward them over the mesh. Both clients must report their UDP path up,
// ping each other, and move TCP through the tunnel (iperf3, recorded).
//
// A dynamic hub's clients too: C logs in at a member that does not hold the
// hub (its pod IP), so its session is relayed to the owner, and D through
// the Service's node port (the UDP node port is the TCP one's number). Both
// must report their UDP path up and ping each other over it.
func TestUDPThroughService(t *testing.T) {
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "lan", Static: true}, {Name: "dyn"}},
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"},
	})
	ip := strings.TrimSpace(e2e.Kubectl(t, "get", "service", "-n", c.Namespace, c.Name, "-o", "jsonpath={.spec.clusterIP}"))
	ports := strings.TrimSpace(e2e.Kubectl(t, "get", "service", "-n", c.Namespace, c.Name, "-o", `jsonpath={range .spec.ports[*]}{.port}/{.protocol} {end}`))
	if !strings.Contains(ports, "443/TCP") || !strings.Contains(ports, "443/UDP") {
		t.Fatalf("client Service ports %q: want 443/TCP and 443/UDP", ports)
	}
	server := ip + ":443"
	a := e2e.StartClient(t, "A", e2e.ClientOptions{Cluster: c, Hub: "lan", User: "alice", Server: server, Address: e2e.Overlay(1), UDP: true})
	b := e2e.StartClient(t, "B", e2e.ClientOptions{Cluster: c, Hub: "lan", User: "bob", Server: server, Address: e2e.Overlay(2), UDP: true})
	for _, cl := range []*e2e.Client{a, b} {
		cl.WaitConnected(t, 30*time.Second)
	}
	a.PingUntil(t, 20*time.Second, b.Address)
	for _, cl := range []*e2e.Client{a, b} {
		waitUDPUp(t, cl)
	}
	if n := a.PingCount(t, b.Address, 20, 50*time.Millisecond); n < 18 {
		t.Errorf("%d of 20 pings A → B answered over the UDP path", n)
	}
	checkUDPStayedUp(t, a, b)

	// The dynamic hub: C relayed (TLS at a member other than the owner),
	// D through the node port.
	owner := c.AssignedMember(t, "dyn")
	var entry, entryIP string
	for _, p := range c.MemberPods(t) {
		if p.Metadata.Name != owner && entryIP == "" {
			entry, entryIP = p.Metadata.Name, p.Status.PodIP
		}
	}
	nodePorts := strings.TrimSpace(e2e.Kubectl(t, "get", "service", "-n", c.Namespace, c.Name, "-o", `jsonpath={range .spec.ports[*]}{.nodePort}/{.protocol} {end}`))
	t.Logf("hub dyn on %s; C logs in at %s; client Service node ports %s", owner, entry, nodePorts)
	if np := strings.Fields(nodePorts); len(np) != 2 || strings.TrimSuffix(np[0], "/TCP") != strings.TrimSuffix(np[1], "/UDP") {
		t.Errorf("client Service node ports %q: want one number for TCP and UDP", nodePorts)
	}
	cc := e2e.StartClient(t, "C relayed", e2e.ClientOptions{Cluster: c, Hub: "dyn", User: "carol", Server: entryIP + ":8443", Address: e2e.Overlay(3), UDP: true})
	d := e2e.StartClient(t, "D node port", e2e.ClientOptions{Cluster: c, Hub: "dyn", User: "dave", Address: e2e.Overlay(4), UDP: true})
	for _, cl := range []*e2e.Client{cc, d} {
		cl.WaitConnected(t, 30*time.Second)
	}
	cc.PingUntil(t, 20*time.Second, d.Address)
	c.WaitSessions(t, "dyn", 30*time.Second, map[string]int{owner: 2})
	for _, cl := range []*e2e.Client{cc, d} {
		waitUDPUp(t, cl)
	}
	if n := cc.PingCount(t, d.Address, 20, 50*time.Millisecond); n < 18 {
		t.Errorf("%d of 20 pings C (relayed) → D answered over the UDP path", n)
	}
	checkUDPStayedUp(t, cc, d)

	for _, p := range c.MemberPods(t) {
		logs, _ := e2e.KubectlErr("logs", "-n", c.Namespace, p.Metadata.Name, "--tail=-1")
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "UDP path") || strings.Contains(l, "UDP peer") || strings.Contains(l, "UDP data channel") || strings.Contains(l, "relay") {
				t.Logf("%s: %s", p.Metadata.Name, l)
			}
		}
	}

	if _, err := exec.LookPath("iperf3"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("iperf3 is missing: .ci/run installs it (apt-get install iperf3)")
		}
		t.Skip("iperf3 is missing: apt-get install iperf3")
	}
	mbps := iperf(t, a, b)
	e2e.Record(t, "TCP throughput A → B through a static hub, both clients on the UDP data channel via the client Service (iperf3 4 s): %.0f Mbit/s", mbps)
	mbps = iperf(t, cc, d)
	checkUDPStayedUp(t, cc, d)
	e2e.Record(t, "TCP throughput C → D through a dynamic hub, C relayed (TLS at a non-owner) and D through the node port, both on the UDP data channel (iperf3 4 s): %.0f Mbit/s", mbps)
}

// iperf runs iperf3 from → to for 4 s and returns the Mbit/s received.
func iperf(t *testing.T, from, to *e2e.Client) float64 {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", to.NS, "iperf3", "-s", "-B", to.Address, "-p", "5201")
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-srv.Process.Pid, syscall.SIGKILL); srv.Wait() }()
	return iperfRun(t, from, to.Address)
}

// iperfRun runs one 4 s iperf3 TCP test from a client to a server already
// listening at addr:5201 and returns the Mbit/s received, retrying for up
// to a minute while the path comes up.
func iperfRun(t *testing.T, from *e2e.Client, addr string) float64 {
	t.Helper()
	var mbps float64
	e2e.Eventually(t, 60*time.Second, "iperf3 from "+from.Name+" to "+addr, func() (bool, error) {
		out, err := from.Exec(30*time.Second, "iperf3", "-c", addr, "-p", "5201", "-t", "4", "-J")
		if err != nil {
			return false, fmt.Errorf("%v: %.300s", err, out)
		}
		var res struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return false, err
		}
		mbps = res.End.SumReceived.BitsPerSecond / 1e6
		return mbps > 0, nil
	})
	return mbps
}

// waitUDPUp waits for the client to report its UDP path up (its last "UDP
// path to" line).
func waitUDPUp(t *testing.T, cl *e2e.Client) {
	t.Helper()
	e2e.Eventually(t, 30*time.Second, "client "+cl.Name+" reports its UDP path up", func() (bool, error) {
		out := cl.Output()
		i := strings.LastIndex(out, "UDP path to ")
		if i < 0 {
			return false, fmt.Errorf("no UDP path line yet")
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		return strings.Contains(line, " up "), fmt.Errorf("last: %q", line)
	})
}

// checkUDPStayedUp fails when a client's last UDP path line says down.
func checkUDPStayedUp(t *testing.T, cls ...*e2e.Client) {
	t.Helper()
	for _, cl := range cls {
		out := cl.Output()
		if i := strings.LastIndex(out, "UDP path to "); i >= 0 && strings.Contains(strings.SplitN(out[i:], "\n", 2)[0], " down") {
			t.Errorf("client %s's UDP path went down: %s", cl.Name, strings.SplitN(out[i:], "\n", 2)[0])
		}
	}
}
