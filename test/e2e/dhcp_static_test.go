// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestStaticHubDHCPFailover: a static hub with spec.dhcp runs one DHCP
// server, on the member status.dhcpServer names. A client connected to
// another member, with no address of its own, gets one from it across the
// mesh (a standard client, busybox udhcpc, on the TAP). The server's member
// container is killed; the operator moves the server to a live member, and
// the client's renewal (unicast to the server's address) keeps its address:
// the new server learns the lease from the renewal.
func TestStaticHubDHCPFailover(t *testing.T) {
	if _, err := exec.LookPath("udhcpc"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("udhcpc is missing: .ci/run installs it (apt-get install udhcpc)")
		}
		t.Skip("the static-hub DHCP test needs udhcpc: apt-get install udhcpc")
	}
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "office", Static: true}},
		Users: map[string]string{"alice": "alice-pw"},
	})
	// Inside the harness's test-only overlay network.
	e2e.Kubectl(t, "patch", "vhub", "-n", c.Namespace, "office", "--type=merge", "-p",
		`{"spec":{"dhcp":{"prefix":"10.250.40.0/24","rangeStart":"10.250.40.10","rangeEnd":"10.250.40.100","leaseSeconds":600}}}`)
	holder := func() (string, string) {
		out, err := e2e.KubectlErr("get", "vhub", "-n", c.Namespace, "office", "-o",
			`jsonpath={.status.dhcpServer}{"|"}{.status.conditions[?(@.type=="DHCPServer")].status}{"|"}{.status.conditions[?(@.type=="DHCPServer")].message}`)
		if err != nil {
			return "", err.Error()
		}
		parts := strings.SplitN(out, "|", 3)
		if len(parts) < 3 || parts[1] != "True" {
			return "", out
		}
		return parts[0], parts[2]
	}
	var first, firstMsg string
	if _, err := e2e.Poll(60*time.Second, 200*time.Millisecond, func() (bool, error) {
		first, firstMsg = holder()
		return first != "", nil
	}); err != nil {
		t.Fatalf("no DHCP server placed: %v (%s)", err, firstMsg)
	}
	t.Logf("DHCP server on %s: %s", first, firstMsg)
	var client e2e.Pod
	for _, p := range c.MemberPods(t) {
		if p.Metadata.Name != first {
			client = p
			break
		}
	}
	a := e2e.StartClient(t, "A", e2e.ClientOptions{Cluster: c, Hub: "office", User: "alice", Server: client.Status.PodIP + ":8443"})
	a.WaitConnected(t, 30*time.Second)

	// udhcpc configures the TAP through this script and logs each lease.
	dir := t.TempDir()
	log := filepath.Join(dir, "leases")
	script := filepath.Join(dir, "udhcpc.sh")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	echo "$1 $ip" >> `+log+`;;
deconfig)
	ip addr flush dev "$interface"
	echo "deconfig" >> `+log+`;;
esac
`), 0o755); err != nil {
		t.Fatal(err)
	}
	u := exec.Command("ip", "netns", "exec", a.NS, "udhcpc", "-f", "-i", a.Tap, "-s", script, "-t", "20", "-T", "1", "-A", "1")
	var out strings.Builder
	u.Stdout, u.Stderr = &out, &out
	u.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := u.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-u.Process.Pid, syscall.SIGKILL); _ = u.Wait() })
	// The script's log from the first lease on (udhcpc deconfigures the
	// interface once as it starts): "bound <ip>", then "renew <ip>" lines.
	leases := func() []string {
		b, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "bound ") {
				return lines[i:]
			}
		}
		return nil
	}
	var addr string
	if _, err := e2e.Poll(30*time.Second, 50*time.Millisecond, func() (bool, error) {
		if l := leases(); len(l) > 0 {
			addr = strings.TrimPrefix(l[0], "bound ")
			return true, nil
		}
		return false, nil
	}); err != nil {
		t.Fatalf("no address from the hub's DHCP server: %v; udhcpc: %s; client: %s", err, out.String(), a.Output())
	}
	e2e.Record(t, "static hub DHCP: client at a non-holder member got %s %.2fs after udhcpc started", addr, time.Since(start).Seconds())

	// The server's member process dies; the operator moves the server.
	killed := time.Now()
	e2e.KillContainer(t, c.MemberPod(t, first))
	var second, secondMsg string
	if _, err := e2e.Poll(60*time.Second, 100*time.Millisecond, func() (bool, error) {
		second, secondMsg = holder()
		return second != "" && second != first, nil
	}); err != nil {
		t.Fatalf("DHCP server not moved off %s: %v (%s)", first, err, secondMsg)
	}
	moved := time.Since(killed)

	// The client renews at once (SIGUSR1) rather than at half its lease.
	if _, err := e2e.Poll(30*time.Second, 500*time.Millisecond, func() (bool, error) {
		if len(leases()) > 1 {
			return true, nil
		}
		_ = u.Process.Signal(syscall.SIGUSR1)
		return false, nil
	}); err != nil {
		t.Fatalf("no renewal after the move: %v; leases %v; udhcpc: %s", err, leases(), out.String())
	}
	if l := leases(); l[1] != "renew "+addr {
		t.Fatalf("after the move the client's leases were %q, want bound %s then renew %s; udhcpc: %s", l, addr, addr, out.String())
	}
	e2e.Record(t, "static hub DHCP failover: server moved from %s to %s %.2fs after its container was killed; renewal kept %s %.2fs after the kill",
		first, second, moved.Seconds(), addr, time.Since(killed).Seconds())
}
