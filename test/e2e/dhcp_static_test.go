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
// server, on the member status.dhcpServer names. Two clients connected to
// the other members, with no address of their own, get distinct ones from it
// across the mesh (a standard client, busybox udhcpc, on the TAP) and ping
// each other. The server's member container is killed; the operator moves
// the server to a live member, both clients' renewals (unicast to the
// server's address) keep their addresses — the new server learns the leases
// from the renewals — and they still ping each other.
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
	// A and B connect to the two members that do not run the server: each
	// gets its address from it across the mesh, and B's member survives the
	// kill below.
	var others []e2e.Pod
	for _, p := range c.MemberPods(t) {
		if p.Metadata.Name != first {
			others = append(others, p)
		}
	}
	if len(others) < 2 {
		t.Fatalf("want two members besides the DHCP server's, have %d", len(others))
	}
	a := e2e.StartClient(t, "A", e2e.ClientOptions{Cluster: c, Hub: "office", User: "alice", Server: others[0].Status.PodIP + ":8443"})
	b := e2e.StartClient(t, "B", e2e.ClientOptions{Cluster: c, Hub: "office", User: "alice", Server: others[1].Status.PodIP + ":8443"})
	a.WaitConnected(t, 30*time.Second)
	b.WaitConnected(t, 30*time.Second)
	start := time.Now()
	ua, ub := startUDHCPC(t, a), startUDHCPC(t, b)
	addrA, addrB := ua.bound(t), ub.bound(t)
	if addrA == addrB {
		t.Fatalf("A and B both got %s", addrA)
	}
	e2e.Record(t, "static hub DHCP: clients at the two non-holder members got %s and %s %.2fs after udhcpc started", addrA, addrB, time.Since(start).Seconds())
	a.PingUntil(t, 20*time.Second, addrB)

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
	ua.renewed(t, addrA)
	ub.renewed(t, addrB)
	e2e.Record(t, "static hub DHCP failover: server moved from %s to %s %.2fs after its container was killed; renewals kept %s and %s %.2fs after the kill",
		first, second, moved.Seconds(), addrA, addrB, time.Since(killed).Seconds())
	a.PingUntil(t, 20*time.Second, addrB)
}

// udhcpcRun is busybox udhcpc on a client's TAP, in its namespace, logging
// each lease through its script.
type udhcpcRun struct {
	cmd *exec.Cmd
	out *strings.Builder
	log string
	c   *e2e.Client
}

func startUDHCPC(t *testing.T, c *e2e.Client) *udhcpcRun {
	t.Helper()
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
	u := &udhcpcRun{out: &strings.Builder{}, log: log, c: c}
	u.cmd = exec.Command("ip", "netns", "exec", c.NS, "udhcpc", "-f", "-i", c.Tap, "-s", script, "-t", "20", "-T", "1", "-A", "1")
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	u.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-u.cmd.Process.Pid, syscall.SIGKILL); _ = u.cmd.Wait() })
	return u
}

// leases is the script's log from the first lease on (udhcpc deconfigures
// the interface once as it starts): "bound <ip>", then "renew <ip>" lines.
func (u *udhcpcRun) leases() []string {
	b, _ := os.ReadFile(u.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "bound ") {
			return lines[i:]
		}
	}
	return nil
}

// bound waits for the first lease and returns its address.
func (u *udhcpcRun) bound(t *testing.T) string {
	t.Helper()
	var addr string
	if _, err := e2e.Poll(30*time.Second, 50*time.Millisecond, func() (bool, error) {
		if l := u.leases(); len(l) > 0 {
			addr = strings.TrimPrefix(l[0], "bound ")
			return true, nil
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%s: no address from the hub's DHCP server: %v; udhcpc: %s; client: %s", u.c.Name, err, u.out.String(), u.c.Output())
	}
	return addr
}

// renewed makes udhcpc renew at once (SIGUSR1) rather than at half its
// lease, until it has, and checks it kept addr.
func (u *udhcpcRun) renewed(t *testing.T, addr string) {
	t.Helper()
	if _, err := e2e.Poll(30*time.Second, 500*time.Millisecond, func() (bool, error) {
		if len(u.leases()) > 1 {
			return true, nil
		}
		_ = u.cmd.Process.Signal(syscall.SIGUSR1)
		return false, nil
	}); err != nil {
		t.Fatalf("%s: no renewal after the move: %v; leases %v; udhcpc: %s", u.c.Name, err, u.leases(), u.out.String())
	}
	if l := u.leases(); l[1] != "renew "+addr {
		t.Fatalf("%s: after the move the leases were %q, want bound %s then renew %s; udhcpc: %s", u.c.Name, l, addr, addr, u.out.String())
	}
}
