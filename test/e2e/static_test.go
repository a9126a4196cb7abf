// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestStaticHubAcrossMembers: a static hub is one Layer-2 segment across the
// members. Two clients join it at two different members and ping each other,
// so their ARP broadcasts and pings cross the member mesh.
//
// Which member serves a session: the client Service spreads connections over
// the members at random (kube-proxy), and the entry member keeps a static
// hub's session unless another member's point leads its own by more than
// placement.StayMargin (docs/member-cluster.md) — never the case on an idle
// cluster. So the test connects each client to a member pod's IP directly,
// which pins the member deterministically, and checks in the members' Lease
// loads that each of the two members serves exactly one session of the hub.
func TestStaticHubAcrossMembers(t *testing.T) {
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "office", Static: true}},
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"},
	})
	pods := c.MemberPods(t)
	if len(pods) < 2 {
		t.Fatalf("%d member pods, want at least 2", len(pods))
	}
	m0, m1 := pods[0], pods[1]
	a := e2e.StartClient(t, "A", e2e.ClientOptions{Cluster: c, Hub: "office", User: "alice",
		Server: m0.Status.PodIP + ":8443", Address: e2e.Overlay(1)})
	b := e2e.StartClient(t, "B", e2e.ClientOptions{Cluster: c, Hub: "office", User: "bob",
		Server: m1.Status.PodIP + ":8443", Address: e2e.Overlay(2)})
	a.WaitConnected(t, 30*time.Second)
	b.WaitConnected(t, 30*time.Second)
	// The Lease load is renewed every leaseDuration/3.
	c.WaitSessions(t, "office", 30*time.Second, map[string]int{m0.Metadata.Name: 1, m1.Metadata.Name: 1})
	t.Logf("A is served by %s, B by %s", m0.Metadata.Name, m1.Metadata.Name)

	took := a.PingUntil(t, 20*time.Second, b.Address)
	b.PingUntil(t, 10*time.Second, a.Address)
	if got := a.PingCount(t, b.Address, 20, 50*time.Millisecond); got < 19 {
		t.Fatalf("A→B across members: %d of 20 pings answered", got)
	}
	e2e.Record(t, "static hub, clients on two members: first A→B ping answered %.2fs after both connected", took.Seconds())
}
