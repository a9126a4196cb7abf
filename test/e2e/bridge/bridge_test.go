// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package bridge

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
	"github.com/hubfleet/hubfleet/internal/testutil"
)

// target is issue #8's: the LAN reachable again at most 3 s (p99) after the
// bridging member's death. Missing it is reported, not failed (the figure
// depends on the machine); a loop or a duplicate fails the test.
const target = 3 * time.Second

// healthySession: a client whose sessions keep ending within 10 s backs off
// (docs/client.md); trials start with a settled session.
const healthySession = 10*time.Second + 500*time.Millisecond

func kills(t *testing.T) int { return envCount(t, "HUBFLEET_E2E_BRIDGE_KILLS", 10) }

// envCount reads a trial count from the environment (def when unset).
func envCount(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a number of trials", name, s)
		}
		return n
	}
	return def
}

// bridged reads status.localBridge and the Bridged condition's status.
func bridged(ns string) (member, status string, err error) {
	out, err := e2e.KubectlErr("get", "virtualhub", "-n", ns, "lan", "-o",
		`jsonpath={.status.localBridge} {.status.conditions[?(@.type=="Bridged")].status}`)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(out)
	if len(f) == 2 {
		return f[0], f[1], nil
	}
	if len(f) == 1 {
		return "", f[0], nil
	}
	return "", "", nil
}

// TestLocalBridgeFailover: a static hub bridged to a LAN the test made; a VPN
// client reaches the LAN host by ping and TCP; the member holding the bridge
// is killed (SIGKILL through containerd) again and again; each time the
// bridge moves and the LAN is reachable again; the LAN host never receives a
// looped or duplicated frame, and its broadcasts stay those of ARP.
func TestLocalBridgeFailover(t *testing.T) {
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "lan", Static: true}},
		Users: map[string]string{"alice": "alice-pw"},
		// Client licenses with room on every member (a member without a free
		// allocation relays a new session to one that has, which would move
		// client B's session off its pinned member) and no bridge license:
		// the local bridge uses none.
		ClientLicenses: 12,
	})
	ns := c.Namespace

	// Members stay unprivileged until a hub has a local bridge.
	for _, p := range c.MemberPods(t) {
		caps, uid := capEff(t, containerPID(t, p.Status.ContainerStatuses[0].ContainerID))
		if caps != "0000000000000000" || uid == "0" {
			t.Fatalf("member %s without a bridge hub: CapEff %s uid %s, want no capability and non-root", p.Metadata.Name, caps, uid)
		}
	}
	e2e.Kubectl(t, "patch", "virtualhub", "-n", ns, "lan", "--type", "merge", "-p",
		`{"spec":{"localBridge":{"interface":"`+lanIface+`"}}}`)
	// The operator gives the members NET_RAW (as root): the StatefulSet rolls.
	// Wait for the new template first, or rollout status reports the old one.
	start := time.Now()
	e2e.Eventually(t, 60*time.Second, "member StatefulSet with NET_RAW", func() (bool, error) {
		out, err := e2e.KubectlErr("get", "statefulset", "-n", ns, c.Name+"-member", "-o",
			"jsonpath={.spec.template.spec.containers[0].securityContext.capabilities.add}")
		return err == nil && strings.Contains(out, "NET_RAW"), fmt.Errorf("capabilities.add %q %v", out, err)
	})
	e2e.Kubectl(t, "rollout", "status", "statefulset", "-n", ns, c.Name+"-member", "--timeout=240s")
	e2e.Eventually(t, 120*time.Second, "all members Ready after the roll", func() (bool, error) {
		st := c.Status(t)
		return st.ReadyMembers == c.Members, fmt.Errorf("%d ready", st.ReadyMembers)
	})
	t.Logf("members rolled with the bridge privileges in %.1fs", time.Since(start).Seconds())
	for _, p := range c.MemberPods(t) {
		caps, uid := capEff(t, containerPID(t, p.Status.ContainerStatuses[0].ContainerID))
		e2e.Record(t, "bridge member %s: uid %s, CapEff %s (NET_RAW is bit 13: 0000000000002000)", p.Metadata.Name, uid, caps)
		if caps != "0000000000002000" {
			t.Errorf("member %s: CapEff %s, want exactly NET_RAW", p.Metadata.Name, caps)
		}
	}

	l := newLAN(t)
	for _, p := range c.MemberPods(t) {
		l.plug(p)
	}
	capt := l.capture(t)

	e2e.Eventually(t, 60*time.Second, "Bridged True", func() (bool, error) {
		m, s, err := bridged(ns)
		return err == nil && m != "" && s == "True", fmt.Errorf("localBridge %q Bridged %q %v", m, s, err)
	})
	// Client A enters through the NodePort Service like any user; its session
	// lands on some member and, when that member is the one killed, has to
	// reconnect. Client B enters at the member with the highest index, which
	// never holds the bridge while a lower one is ready (the operator takes
	// the first eligible member), and stays there while that member has a free
	// license. The bridge's own failover is read from a client whose session
	// survived the kill (SessionAge tells); A's and B's figures are recorded
	// as well.
	members := c.MemberPods(t)
	pinned := members[len(members)-1]
	a := e2e.StartClient(t, "A", e2e.ClientOptions{Cluster: c, Hub: "lan", User: "alice", Address: e2e.Overlay(1), Verbose: true})
	b := e2e.StartClient(t, "B", e2e.ClientOptions{Cluster: c, Hub: "lan", User: "alice", Address: e2e.Overlay(2),
		Server: net.JoinHostPort(pinned.Status.PodIP, "8443"), Verbose: true})
	for _, cl := range []*e2e.Client{a, b} {
		cl.WaitConnected(t, 30*time.Second)
		d := cl.PingUntil(t, 30*time.Second, lanHost)
		t.Logf("client %s reaches the LAN host %.2fs after connecting", cl.Name, d.Seconds())
		tcpEcho(t, l, cl)
	}

	capA, capB := captureOn(t, a.NS, a.Tap), captureOn(t, b.NS, b.Tap)
	w := e2e.StartWatch(t, ns, "virtualhub/lan", `{.status.localBridge} {.status.conditions[?(@.type=="Bridged")].status}`)
	var resumeA, resumeB, moved, bridgeOnly []time.Duration
	for i := range kills(t) {
		r := killTrial(t, c, a, b, w, pinned.Metadata.Name, false)
		t.Logf("kill %d: %s → %s, bridge moved +%.2fs, LAN reachable from B (pinned) +%.2fs (B reconnected: %v), from A +%.2fs (A reconnected: %v)",
			i+1, r.from, r.to, r.moved.Seconds(), r.resumeB.Seconds(), r.reconnectedB, r.resumeA.Seconds(), r.reconnectedA)
		resumeA, resumeB, moved = append(resumeA, r.resumeA), append(resumeB, r.resumeB), append(moved, r.moved)
		// The bridge's own failover: seen by a client whose session survived.
		switch {
		case !r.reconnectedB:
			bridgeOnly = append(bridgeOnly, r.resumeB)
		case !r.reconnectedA:
			bridgeOnly = append(bridgeOnly, r.resumeA)
		default:
			t.Logf("kill %d: both clients' sessions were on the killed member; not a bridge-only sample", i+1)
		}
	}
	// The operator dies with the holder: the members move the bridge
	// themselves (pkg/member/cluster/failover_bridge.go).
	var withOp, movedOp []time.Duration
	for i := range envCount(t, "HUBFLEET_E2E_BRIDGE_OPERATOR_KILLS", 3) {
		r := killTrial(t, c, a, b, w, pinned.Metadata.Name, true)
		t.Logf("kill %d with the operator: %s → %s, bridge moved +%.2fs, LAN reachable from B +%.2fs (reconnected: %v), from A +%.2fs (reconnected: %v)",
			i+1, r.from, r.to, r.moved.Seconds(), r.resumeB.Seconds(), r.reconnectedB, r.resumeA.Seconds(), r.reconnectedA)
		switch {
		case !r.reconnectedB:
			withOp = append(withOp, r.resumeB)
		case !r.reconnectedA:
			withOp = append(withOp, r.resumeA)
		}
		movedOp = append(movedOp, r.moved)
	}
	tcpEcho(t, l, a)
	tcpEcho(t, l, b)
	resume := bridgeOnly
	e2e.Record(t, "operator and bridge holder killed together → LAN host reachable (ping, a client whose session survived): %s", e2e.Summary(withOp))
	e2e.Record(t, "operator and bridge holder killed together → status.localBridge moved: %s", e2e.Summary(movedOp))
	if p99 := e2e.Percentile(withOp, 99); len(withOp) > 0 && p99 > target {
		t.Logf("TARGET MISSED with the operator down: p99 %.2fs > %v", p99.Seconds(), target)
	}

	frames, bcast, loops, dups := capt.counts()
	e2e.Record(t, "bridge holder killed → LAN host reachable (ping, a client whose session survived): %s", e2e.Summary(bridgeOnly))
	e2e.Record(t, "bridge holder killed → LAN host reachable (ping, client B entering at the highest member): %s", e2e.Summary(resumeB))
	e2e.Record(t, "bridge holder killed → LAN host reachable (ping, client A through the Service, reconnecting when its member died): %s", e2e.Summary(resumeA))
	e2e.Record(t, "bridge holder killed → status.localBridge moved: %s", e2e.Summary(moved))
	e2e.Record(t, "LAN side during %d kills: %d frames, %d broadcasts, %d looped (own source MAC), %d duplicated ICMP echo",
		len(resume), frames, bcast, loops, dups)
	for _, x := range []struct {
		name string
		c    *capture
	}{{"A", capA}, {"B", capB}} {
		f, _, l, d := x.c.counts()
		e2e.Record(t, "client %s's TAP during the kills: %d frames, %d of its own frames back (loop), %d duplicated ICMP echo replies", x.name, f, l, d)
		loops, dups = loops+l, dups+d
	}
	if loops > 0 || dups > 0 {
		t.Errorf("%d looped and %d duplicated frames on the LAN host and the clients: two members bridged at once", loops, dups)
	}
	if bcast > 50*len(resume)+50 {
		t.Errorf("%d broadcasts on the LAN during %d kills: a storm", bcast, len(resume))
	}
	if p99 := e2e.Percentile(resume, 99); p99 > target {
		t.Logf("TARGET MISSED: p99 %.2fs > %v (issue #8)", p99.Seconds(), target)
	}
	for _, cl := range []*e2e.Client{a, b} {
		if cl.Exited() {
			t.Fatalf("client %s exited:\n%s", cl.Name, cl.Output())
		}
	}
}

type trial struct {
	from, to                   string
	moved, resumeA, resumeB    time.Duration
	reconnectedA, reconnectedB bool
}

// killTrial kills the bridging member's container and measures when the
// bridge moved and when each client's pings reached the LAN host again; then
// waits for a whole cluster.
func killTrial(t *testing.T, c *e2e.Cluster, a, b *e2e.Client, w *e2e.Watch, pinned string, withOperator bool) trial {
	t.Helper()
	e2e.Eventually(t, 30*time.Second, "settled client sessions", func() (bool, error) {
		return a.SessionAge() > healthySession && b.SessionAge() > healthySession, nil
	})
	holder, status, err := bridged(c.Namespace)
	if err != nil || holder == "" || status != "True" {
		t.Fatalf("no active bridge before the kill: %q %q %v", holder, status, err)
	}
	if holder == pinned {
		t.Fatalf("the bridge is on %s, the member client B is pinned to", pinned)
	}
	pod := c.MemberPod(t, holder)
	pa := a.StartPingStream(t, lanHost, 20*time.Millisecond)
	defer pa.Stop()
	pb := b.StartPingStream(t, lanHost, 20*time.Millisecond)
	defer pb.Stop()
	for _, p := range []*e2e.PingStream{pa, pb} {
		if _, err := p.FirstReplyAfter(time.Now(), 10*time.Second); err != nil {
			t.Fatalf("the LAN host does not answer before the kill: %v", err)
		}
	}
	var op e2e.Pod
	if withOperator {
		op = e2e.OperatorPod(t)
	}
	t0 := time.Now()
	if withOperator {
		// At the same moment: each kill is a ctr call of 0.1–0.2 s.
		var kills sync.WaitGroup
		var opErr error
		kills.Go(func() { opErr = e2e.KillContainerErr(op) })
		e2e.KillContainer(t, pod)
		kills.Wait()
		if opErr != nil {
			t.Fatal(opErr)
		}
	} else {
		e2e.KillContainer(t, pod)
	}
	r := trial{from: holder}
	for _, x := range []struct {
		p   *e2e.PingStream
		cl  *e2e.Client
		out *time.Duration
	}{{pb, b, &r.resumeB}, {pa, a, &r.resumeA}} {
		replied, err := x.p.FirstReplyAfterGap(t0, 100*time.Millisecond, 30*time.Second)
		if err != nil {
			out, _ := e2e.KubectlErr("get", "virtualhub", "-n", c.Namespace, "lan", "-o", "yaml")
			t.Fatalf("the LAN host is not reachable from %s after killing %s: %v\n%s\n%s", x.cl.Name, holder, err, out, x.cl.Output())
		}
		*x.out = replied.Sub(t0)
	}
	r.reconnectedA = a.SessionAge() < time.Since(t0)
	r.reconnectedB = b.SessionAge() < time.Since(t0)
	mv := w.WaitFor(t, t0, 30*time.Second, "bridge moved off "+holder, func(v string) bool {
		f := strings.Fields(v)
		return len(f) == 2 && f[0] != holder && f[1] == "True"
	})
	r.to, r.moved = strings.Fields(mv.Value)[0], mv.At.Sub(t0)
	if r.resumeB > 2*time.Second {
		// Slow: show what the new holder and the pinned member did.
		for _, m := range []string{r.to, pinned} {
			out, _ := e2e.KubectlErr("logs", "-n", c.Namespace, m, "--since=30s", "--timestamps")
			var keep []string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "bridge") || strings.Contains(line, "mesh") || strings.Contains(line, "peer") {
					keep = append(keep, line)
				}
			}
			t.Logf("slow trial (kill at %s): %s log:\n%s", t0.UTC().Format("15:04:05.000"), m, strings.Join(keep, "\n"))
		}
	}
	e2e.WaitPod(t, c.Namespace, holder, 180*time.Second, "back and Ready", func(p e2e.Pod) bool {
		return p.Restarts() > pod.Restarts() && p.Ready()
	})
	if withOperator {
		e2e.WaitPod(t, e2e.OperatorNamespace, op.Metadata.Name, 90*time.Second, "operator back and Ready", func(p e2e.Pod) bool {
			return p.Restarts() > op.Restarts() && p.Ready()
		})
	}
	e2e.Eventually(t, 60*time.Second, "all members Ready in the VPNCluster status", func() (bool, error) {
		st := c.Status(t)
		return st.ReadyMembers == c.Members, fmt.Errorf("%d of %d ready", st.ReadyMembers, c.Members)
	})
	return r
}

// tcpEcho sends 1 MiB from the client's namespace to an echo server on the
// LAN host and checks it comes back.
func tcpEcho(t *testing.T, l *lan, cl *e2e.Client) {
	t.Helper()
	var ln net.Listener
	if err := testutil.InNetns(l.hostNS, func() (err error) { ln, err = net.Listen("tcp", lanHost+":0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	var conn net.Conn
	if err := testutil.InNetns(cl.NS, func() (err error) { conn, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second); return err }); err != nil {
		t.Fatalf("TCP from the client to the LAN host: %v", err)
	}
	defer conn.Close()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	go func() { _, _ = conn.Write(data) }()
	got := make([]byte, len(data))
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("TCP echo through the bridge: %v", err)
	}
	for i := range data {
		if got[i] != data[i] {
			t.Fatalf("TCP echo differs at byte %d", i)
		}
	}
}
