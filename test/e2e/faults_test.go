// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// faultTarget is issue #15's bound for a frozen or cut-off member: ping
// resumes within the Lease duration (default 3 s) + 1 s, p99. Reported, not
// failed (the figure depends on the machine, docs/e2e.md); duplicates and a
// second owner fail the test.
const faultTarget = 4 * time.Second

// TestMemberFrozenOrCutOff: two clients of a dynamic hub ping each other
// (ping -i 0.05); the member holding the hub is frozen (SIGSTOP of its
// container's process, SIGCONT HUBFLEET_E2E_FAULT_FOR later, default 8 s)
// or cut off the network (iptables DROP in its pod's network namespace for
// as long), HUBFLEET_E2E_FAULTS times each (default 10). Each time pings
// must resume while the fault lasts (the hub moves, the clients reconnect to
// its new owner: nothing waits for the faulty member to come back), no reply
// may be duplicated (ping's DUP!: two copies of the hub forwarding) and no
// two members may serve the hub at the same instant (their own metrics,
// sampled every 100 ms) — during the fault or after the member is back.
func TestMemberFrozenOrCutOff(t *testing.T) {
	c, a, b, hubWatch := labUnderTest(t)
	faultFor := 8 * time.Second
	if s := os.Getenv("HUBFLEET_E2E_FAULT_FOR"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 2*time.Second {
			t.Fatalf("HUBFLEET_E2E_FAULT_FOR=%q: want a duration of at least 2s", s)
		}
		faultFor = d
	}

	run := func(t *testing.T, how string) {
		var resume, moved, notReady []time.Duration
		late := 0
		for i := range envInt(t, "HUBFLEET_E2E_FAULTS", 10) {
			r := faultTrial(t, c, a, b, hubWatch, how, faultFor)
			t.Logf("trial %d (%s %s for %v): pod not Ready +%.2fs, hub moved to %s +%.2fs, ping resumed +%.2fs",
				i+1, how, r.from, faultFor, r.notReady.Seconds(), r.to, r.moved.Seconds(), r.resume.Seconds())
			resume, moved, notReady = append(resume, r.resume), append(moved, r.moved), append(notReady, r.notReady)
			if r.resume >= faultFor {
				late++
			}
		}
		e2e.Record(t, "%s (%v) → ping resumes: %s; resumed only after the fault ended: %d", how, faultFor, e2e.Summary(resume), late)
		e2e.Record(t, "%s (%v) → hub reassigned (status.assignedMember): %s", how, faultFor, e2e.Summary(moved))
		e2e.Record(t, "%s (%v) → pod Ready=False seen: %s", how, faultFor, e2e.Summary(notReady))
		if p99 := e2e.Percentile(resume, 99); p99 > faultTarget {
			t.Logf("TARGET MISSED: p99 %.2fs > %v (issue #15)", p99.Seconds(), faultTarget)
		}
	}
	t.Run("Frozen", func(t *testing.T) { run(t, "member frozen") })
	t.Run("CutOff", func(t *testing.T) { run(t, "member cut off") })
	if a.Exited() || b.Exited() {
		t.Fatalf("a client exited; clients must ride out faults:\n%s\n%s", a.Output(), b.Output())
	}
}

// faultTrial injects one fault into the member holding hub lab for faultFor
// and measures, from its start, when the pod was seen not Ready, when the
// hub moved and when A's pings to B were answered again; it then ends the
// fault, waits for the member to be Ready again and pings to flow, and fails
// on a duplicated reply or a moment with two owners.
func faultTrial(t *testing.T, c *e2e.Cluster, a, b *e2e.Client, hubWatch *e2e.Watch, how string, faultFor time.Duration) trial {
	t.Helper()
	tr := startTrial(t, c, a, b, hubWatch)
	defer tr.stop()
	owner, pod, ping := tr.owner, tr.pod, tr.ping
	owners := c.SampleOwners(t, "lab", 100*time.Millisecond)
	defer owners.Stop()

	t0 := time.Now()
	var end func()
	switch how {
	case "member frozen":
		end = e2e.FreezeContainer(t, pod)
	case "member cut off":
		end = e2e.CutNetwork(t, pod)
	default:
		t.Fatalf("unknown fault %q", how)
	}
	r := tr.measure(t, t0, faultFor+30*time.Second, how, end)

	// The fault lasts its full length whatever happened meanwhile: the point
	// is what the member does when it comes back to a cluster that moved on.
	if d := time.Until(t0.Add(faultFor)); d > 0 {
		time.Sleep(d) // the fault's duration, not a wait for a condition
	}
	end()
	woke := time.Now()
	e2e.WaitPod(t, c.Namespace, owner, 60*time.Second, "Ready again after the fault", func(p e2e.Pod) bool {
		return p.Metadata.UID == pod.Metadata.UID && p.Ready()
	})
	// Frames keep flowing for a while after the member is back: 40 more
	// replies (2 s at 50 ms) observed with it serving what it thinks it has.
	n := ping.Replies()
	e2e.Eventually(t, 30*time.Second, "40 more ping replies after the member is back", func() (bool, error) {
		return ping.Replies() >= n+40, fmt.Errorf("%d replies since", ping.Replies()-n)
	})
	owners.Stop()
	if mx, at, who, samples := owners.Max(); mx > 1 {
		t.Fatalf("%s: %d members served hub lab at once (%v) at %s (fault at %s, ended %s; %d samples)",
			how, mx, who, at.Format("15:04:05.000"), t0.Format("15:04:05.000"), woke.Format("15:04:05.000"), samples)
	}
	if d := ping.Dups(); d > 0 {
		t.Fatalf("%s: %d duplicated ping replies (DUP!): two copies of hub lab forwarded frames", how, d)
	}
	b.PingUntil(t, 10*time.Second, a.Address)
	if p := c.MemberPod(t, owner); p.Restarts() != pod.Restarts() {
		t.Fatalf("%s restarted during the %s trial (restarts %d → %d): the probe must not kill a frozen member", owner, how, pod.Restarts(), p.Restarts())
	}
	return r
}
