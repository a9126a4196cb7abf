// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// pingingPair starts clients A (alice, overlay .1) and B (bob, .2) on hub of
// c through the client Service, waits for both sessions, and returns once
// they ping each other both ways; took is how long A's first ping took.
func pingingPair(t *testing.T, c *e2e.Cluster, hub string) (a, b *e2e.Client, took time.Duration) {
	t.Helper()
	a = e2e.StartClient(t, "A", e2e.ClientOptions{Cluster: c, Hub: hub, User: "alice", Address: e2e.Overlay(1)})
	b = e2e.StartClient(t, "B", e2e.ClientOptions{Cluster: c, Hub: hub, User: "bob", Address: e2e.Overlay(2)})
	a.WaitConnected(t, 30*time.Second)
	b.WaitConnected(t, 30*time.Second)
	took = a.PingUntil(t, 20*time.Second, b.Address)
	b.PingUntil(t, 10*time.Second, a.Address)
	return a, b, took
}

// labUnderTest deploys the operator, a cluster with the dynamic hub "lab"
// (users alice and bob), clients A and B pinging each other on it, and a
// watch on the hub's assigned member: where every failover and fault test
// starts.
func labUnderTest(t *testing.T) (c *e2e.Cluster, a, b *e2e.Client, hubWatch *e2e.Watch) {
	t.Helper()
	e2e.DeployOperator(t)
	c = e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "lab"}},
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"},
	})
	a, b, _ = pingingPair(t, c, "lab")
	hubWatch = e2e.StartWatch(t, c.Namespace, "virtualhub/lab", "{.status.assignedMember}")
	return c, a, b, hubWatch
}
