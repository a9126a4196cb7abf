// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestOperatorStopped: with the operator scaled to zero, the members keep
// serving on the last known placement: existing clients of a dynamic and a
// static hub keep pinging without losing their sessions, and new clients join
// both hubs.
func TestOperatorStopped(t *testing.T) {
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "lab"}, {Name: "office", Static: true}},
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"},
	})
	a := e2e.StartClient(t, "A", e2e.ClientOptions{Cluster: c, Hub: "lab", User: "alice", Address: e2e.Overlay(1)})
	b := e2e.StartClient(t, "B", e2e.ClientOptions{Cluster: c, Hub: "lab", User: "bob", Address: e2e.Overlay(2)})
	s1 := e2e.StartClient(t, "S1", e2e.ClientOptions{Cluster: c, Hub: "office", User: "alice", Address: e2e.Overlay(11)})
	for _, cl := range []*e2e.Client{a, b, s1} {
		cl.WaitConnected(t, 30*time.Second)
	}
	a.PingUntil(t, 20*time.Second, b.Address)

	// Registered after the namespace's cleanup, so it runs first: the
	// VPNCluster's finalizer needs the operator to delete the namespace.
	t.Cleanup(func() { e2e.StartOperator(t) })
	e2e.StopOperator(t)
	t.Log("operator stopped (scaled to 0, its pod gone)")
	before := strings.Count(a.Output(), "connection lost") + strings.Count(b.Output(), "connection lost")

	if got := a.PingCount(t, b.Address, 40, 50*time.Millisecond); got < 39 {
		t.Fatalf("with the operator stopped, A→B: %d of 40 pings answered", got)
	}
	// New clients join both hubs and reach the existing ones.
	n := e2e.StartClient(t, "N", e2e.ClientOptions{Cluster: c, Hub: "lab", User: "carol", Address: e2e.Overlay(3)})
	s2 := e2e.StartClient(t, "S2", e2e.ClientOptions{Cluster: c, Hub: "office", User: "bob", Address: e2e.Overlay(12)})
	n.WaitConnected(t, 30*time.Second)
	s2.WaitConnected(t, 30*time.Second)
	n.PingUntil(t, 20*time.Second, a.Address)
	s2.PingUntil(t, 20*time.Second, s1.Address)
	b.PingUntil(t, 10*time.Second, n.Address)
	if after := strings.Count(a.Output(), "connection lost") + strings.Count(b.Output(), "connection lost"); after != before {
		t.Fatalf("existing clients lost their sessions while the operator was stopped:\nA:\n%s\nB:\n%s", a.Output(), b.Output())
	}
	if got := e2e.GetPodCount(t, e2e.OperatorNamespace, "app.kubernetes.io/component=operator"); got != 0 {
		t.Fatalf("%d operator pods while it should be stopped", got)
	}
	t.Log("existing clients kept their sessions and pinged; new clients joined the dynamic and the static hub")
}
