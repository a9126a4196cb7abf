// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// failoverTarget is issue #6's target for "member process killed → ping
// resumes", p99 (the goal is 2 s). Missing it is reported, not failed: the
// figure depends on the machine (docs/e2e.md).
const failoverTarget = 3 * time.Second

// healthySession is pkg/client's: a session that lasted this long resets the
// client's backoff (plus a margin).
const healthySession = 10*time.Second + 500*time.Millisecond

// TestDynamicHubFailover: two clients of a dynamic hub ping each other; the
// member holding the hub is killed (its container's process, SIGKILL through
// containerd) again and again, and in a second trial its pod is deleted. Each
// time the hub must move (status.assignedMember changes), both clients must
// reconnect by themselves and pings must resume. The time from the kill to the
// first ping reply is measured, with the moments the pod turned not Ready and
// the operator reassigned the hub, and p50/p99 go to the results file.
func TestDynamicHubFailover(t *testing.T) {
	c, a, b, hubWatch := labUnderTest(t)
	run := func(t *testing.T, trials int, how string) {
		var resume, moved, notReady []time.Duration
		for i := range trials {
			r := failoverTrial(t, c, a, b, hubWatch, how)
			t.Logf("trial %d (%s %s): pod not Ready +%.2fs, hub moved to %s +%.2fs, ping resumed +%.2fs",
				i+1, how, r.from, r.notReady.Seconds(), r.to, r.moved.Seconds(), r.resume.Seconds())
			resume, moved, notReady = append(resume, r.resume), append(moved, r.moved), append(notReady, r.notReady)
		}
		e2e.Record(t, "%s → ping resumes: %s", how, e2e.Summary(resume))
		e2e.Record(t, "%s → hub reassigned (status.assignedMember): %s", how, e2e.Summary(moved))
		e2e.Record(t, "%s → pod Ready=False seen: %s", how, e2e.Summary(notReady))
		if p99 := e2e.Percentile(resume, 99); p99 > failoverTarget {
			t.Logf("TARGET MISSED: p99 %.2fs > %v (issue #6)", p99.Seconds(), failoverTarget)
		}
	}
	t.Run("ContainerKilled", func(t *testing.T) { run(t, envInt(t, "HUBFLEET_E2E_KILLS", 10), "container killed") })
	t.Run("PodDeleted", func(t *testing.T) { run(t, envInt(t, "HUBFLEET_E2E_DELETES", 3), "pod deleted") })
	if a.Exited() || b.Exited() {
		t.Fatalf("a client exited; clients must ride out failovers:\n%s\n%s", a.Output(), b.Output())
	}
	t.Logf("client A's status lines:\n%s", a.Output())
}

// TestFailoverWithOperatorDown: the operator's container and the container of
// the member holding the dynamic hub are killed at the same moment, again and
// again. Nothing may wait for a new operator (its restart and leader election
// take 15 s or more): the surviving members see the owner's death on the mesh,
// claim its Lease and move the hub themselves (docs/design-operator.md,
// "Failover without the operator"), and pings resume within the bound of the
// operator-alive case.
func TestFailoverWithOperatorDown(t *testing.T) {
	c, a, b, hubWatch := labUnderTest(t)
	var resume, moved []time.Duration
	for i := range envInt(t, "HUBFLEET_E2E_OPERATOR_KILLS", 10) {
		tr := startTrial(t, c, a, b, hubWatch)
		op := e2e.OperatorPod(t)
		owners := c.SampleOwners(t, "lab", 100*time.Millisecond)
		// Both kills at the same moment: each is a ctr call of 0.1–0.2 s, so
		// in sequence the owner would die that much after t0.
		t0 := time.Now()
		var kills sync.WaitGroup
		var opErr error
		kills.Go(func() { opErr = e2e.KillContainerErr(op) })
		e2e.KillContainer(t, tr.pod)
		kills.Wait()
		if opErr != nil {
			t.Fatal(opErr)
		}
		r := tr.measure(t, t0, 30*time.Second, "the operator's and the owner's containers killed", nil)
		tr.stop()
		t.Logf("trial %d (operator + %s killed): hub moved to %s +%.2fs, ping resumed +%.2fs", i+1, r.from, r.to, r.moved.Seconds(), r.resume.Seconds())
		resume, moved = append(resume, r.resume), append(moved, r.moved)
		b.PingUntil(t, 10*time.Second, a.Address)

		// Back to a whole cluster with an elected operator before the next trial.
		e2e.WaitPod(t, c.Namespace, tr.owner, 90*time.Second, "back and Ready", func(p e2e.Pod) bool {
			return p.Restarts() > tr.pod.Restarts() && p.Ready()
		})
		e2e.WaitPod(t, e2e.OperatorNamespace, op.Metadata.Name, 90*time.Second, "operator back and Ready", func(p e2e.Pod) bool {
			return p.Restarts() > op.Restarts() && p.Ready()
		})
		allMembersReady(t, c, 90*time.Second, " (the operator leads again)")
		owners.Stop()
		if mx, at, who, _ := owners.Max(); mx > 1 {
			t.Fatalf("%d members served hub lab at once (%v) at %s", mx, who, at.Format("15:04:05.000"))
		}
		if d := tr.ping.Dups(); d > 0 {
			t.Fatalf("%d duplicated ping replies (DUP!): two copies of hub lab forwarded frames", d)
		}
	}
	e2e.Record(t, "operator and owner killed together → ping resumes: %s", e2e.Summary(resume))
	e2e.Record(t, "operator and owner killed together → hub reassigned (status.assignedMember): %s", e2e.Summary(moved))
	if p99 := e2e.Percentile(resume, 99); p99 > failoverTarget {
		t.Logf("TARGET MISSED: p99 %.2fs > %v", p99.Seconds(), failoverTarget)
	}
	if a.Exited() || b.Exited() {
		t.Fatalf("a client exited; clients must ride out failovers:\n%s\n%s", a.Output(), b.Output())
	}
}

type trial struct {
	from, to                string
	notReady, moved, resume time.Duration
}

// failoverTrial kills (or deletes) the member holding hub lab and measures,
// from that instant, when the pod was seen not Ready, when the hub was
// reassigned, and when A's pings to B were answered again; then it waits until
// the member is back and Ready, so every trial starts from a whole cluster.
func failoverTrial(t *testing.T, c *e2e.Cluster, a, b *e2e.Client, hubWatch *e2e.Watch, how string) trial {
	t.Helper()
	tr := startTrial(t, c, a, b, hubWatch)
	defer tr.stop()
	owner, pod := tr.owner, tr.pod

	t0 := time.Now()
	switch how {
	case "container killed":
		e2e.KillContainer(t, pod)
	case "pod deleted":
		e2e.DeletePod(t, c.Namespace, owner)
	default:
		t.Fatalf("unknown trial %q", how)
	}
	r := tr.measure(t, t0, 30*time.Second, "the "+how, nil)
	b.PingUntil(t, 10*time.Second, a.Address)

	// Back to a whole cluster: the member restarted (or recreated) and Ready,
	// and the VPNCluster counting it Ready again.
	e2e.WaitPod(t, c.Namespace, owner, 90*time.Second, "back and Ready", func(p e2e.Pod) bool {
		if how == "pod deleted" {
			return p.Metadata.UID != pod.Metadata.UID && p.Ready()
		}
		return p.Restarts() > pod.Restarts() && p.Ready()
	})
	allMembersReady(t, c, 60*time.Second, "")
	return r
}

// allMembersReady waits until the VPNCluster's status counts every member
// Ready: a whole cluster, for the next trial to start from.
func allMembersReady(t *testing.T, c *e2e.Cluster, within time.Duration, why string) {
	t.Helper()
	e2e.Eventually(t, within, "all members Ready in the VPNCluster status"+why, func() (bool, error) {
		st := c.Status(t)
		ready := 0
		for _, m := range st.Members {
			if m.Ready && m.State == "Ready" {
				ready++
			}
		}
		return ready == c.Members, fmt.Errorf("%d of %d members Ready: %+v", ready, c.Members, st.Members)
	})
}

// trialRun is what a failover or fault trial starts from: the member holding
// hub lab, a watch on its pod, and a ping stream from A to B that already
// gets replies.
type trialRun struct {
	a, b     *e2e.Client
	hubWatch *e2e.Watch
	owner    string
	pod      e2e.Pod
	podWatch *e2e.Watch
	ping     *e2e.PingStream
}

func startTrial(t *testing.T, c *e2e.Cluster, a, b *e2e.Client, hubWatch *e2e.Watch) *trialRun {
	t.Helper()
	tr := &trialRun{a: a, b: b, hubWatch: hubWatch, owner: hubWatch.Last()}
	if tr.owner == "" {
		t.Fatal("hub lab has no assigned member")
	}
	tr.pod = c.MemberPod(t, tr.owner)
	tr.podWatch = e2e.StartWatch(t, c.Namespace, "pod/"+tr.owner, `{.metadata.uid} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}`)
	// A client whose sessions keep ending within healthySession (10 s) backs
	// off (docs/client.md); failover is measured for clients in a healthy
	// session, as they are in service, so a trial starts once both sessions
	// are older than that.
	e2e.Eventually(t, 30*time.Second, "both clients in a session older than 10s", func() (bool, error) {
		return a.SessionAge() > healthySession && b.SessionAge() > healthySession, nil
	})
	tr.ping = a.StartPingStream(t, b.Address, 50*time.Millisecond)
	if _, err := tr.ping.FirstReplyAfter(time.Now(), 10*time.Second); err != nil {
		tr.stop()
		t.Fatalf("A does not reach B before the fault: %v\n%s", err, a.Output())
	}
	return tr
}

func (tr *trialRun) stop() {
	if tr.ping != nil {
		tr.ping.Stop()
	}
	tr.podWatch.Stop()
}

// measure times, from t0, when A's pings to B were answered again (the first
// reply after an outage of more than four ping intervals: replies in flight
// at t0 arrive just after it), when the hub moved off the owner and when its
// pod was seen not Ready. onFail runs before a failure is reported.
func (tr *trialRun) measure(t *testing.T, t0 time.Time, within time.Duration, what string, onFail func()) trial {
	t.Helper()
	replied, err := tr.ping.FirstReplyAfterGap(t0, 200*time.Millisecond, within)
	if err != nil {
		if onFail != nil {
			onFail()
		}
		t.Fatalf("pings from A to B did not resume after %s of %s: %v\nA:\n%s\nB:\n%s", what, tr.owner, err, tr.a.Output(), tr.b.Output())
	}
	r := trial{from: tr.owner, resume: replied.Sub(t0)}
	mv := tr.hubWatch.WaitFor(t, t0, within, "hub lab moved off "+tr.owner, func(v string) bool { return v != "" && v != tr.owner })
	r.to, r.moved = mv.Value, mv.At.Sub(t0)
	if nr, ok := tr.podWatch.FirstAfter(t0, func(v string) bool {
		f := strings.Fields(v)
		return len(f) != 2 || f[0] != tr.pod.Metadata.UID || f[1] != "True"
	}); ok {
		r.notReady = nr.At.Sub(t0)
	}
	return r
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}
