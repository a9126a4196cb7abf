// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestHubIsolation: two static hubs of one cluster, blue and red, each with a
// client on two members, all four TAPs in one overlay subnet so that only hub
// isolation keeps them apart. While blue's clients broadcast ARP, ping each
// other across the member mesh, ping the broadcast address and ARP for red's
// addresses, red's TAPs receive not one frame from blue's clients (captured on
// the TAPs for exactly the exchange), and red and blue cannot reach each
// other; then the same the other way round, and for a dynamic hub of the same
// cluster. (Frames of a client's own hub may arrive meanwhile — the kernel
// re-probes a neighbour 5 s after using an unconfirmed entry — and are only
// logged.)
func TestHubIsolation(t *testing.T) {
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs: []e2e.HubSpec{{Name: "blue", Static: true}, {Name: "red", Static: true}, {Name: "green"}},
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw",
			"erin": "erin-pw", "frank": "frank-pw"},
	})
	pods := c.MemberPods(t)
	at := func(i int) string { return pods[i%len(pods)].Status.PodIP + ":8443" }
	// A (blue) and C (red) share member 0; B (blue) and D (red) share member 1:
	// blue's frames cross the mesh between the members that also carry red.
	a := e2e.StartClient(t, "A blue", e2e.ClientOptions{Cluster: c, Hub: "blue", User: "alice", Server: at(0), Address: e2e.Overlay(1)})
	b := e2e.StartClient(t, "B blue", e2e.ClientOptions{Cluster: c, Hub: "blue", User: "bob", Server: at(1), Address: e2e.Overlay(2)})
	cc := e2e.StartClient(t, "C red", e2e.ClientOptions{Cluster: c, Hub: "red", User: "carol", Server: at(0), Address: e2e.Overlay(3)})
	d := e2e.StartClient(t, "D red", e2e.ClientOptions{Cluster: c, Hub: "red", User: "dave", Server: at(1), Address: e2e.Overlay(4)})
	e := e2e.StartClient(t, "E green", e2e.ClientOptions{Cluster: c, Hub: "green", User: "erin", Address: e2e.Overlay(5)})
	f := e2e.StartClient(t, "F green", e2e.ClientOptions{Cluster: c, Hub: "green", User: "frank", Address: e2e.Overlay(6)})
	for _, cl := range []*e2e.Client{a, b, cc, d, e, f} {
		cl.WaitConnected(t, 30*time.Second)
	}
	// Every hub works, so red's silence below is isolation, not a dead client.
	a.PingUntil(t, 20*time.Second, b.Address)
	cc.PingUntil(t, 20*time.Second, d.Address)
	e.PingUntil(t, 20*time.Second, f.Address)

	exchange := func(x, y *e2e.Client, others ...*e2e.Client) func() {
		return func() {
			// Forget the neighbours so x and y must ARP (broadcast) again.
			for _, cl := range []*e2e.Client{x, y} {
				cl.Exec(5*time.Second, "ip", "neigh", "flush", "dev", cl.Tap)
			}
			for range 3 {
				if err := x.Ping(y.Address, time.Second); err != nil {
					t.Fatalf("%s lost %s during the isolation check: %v", x.Name, y.Name, err)
				}
				if err := y.Ping(x.Address, time.Second); err != nil {
					t.Fatalf("%s lost %s during the isolation check: %v", y.Name, x.Name, err)
				}
			}
			// A broadcast ping: one frame to every port of the hub.
			x.Exec(5*time.Second, "ping", "-b", "-c", "2", "-i", "0.2", "-W", "1", "10.250.255.255")
			// ARP for the other hubs' addresses: broadcasts that must stay in x's hub.
			for _, o := range others {
				if err := x.Ping(o.Address, 500*time.Millisecond); err == nil {
					t.Fatalf("%s reached %s of another hub", x.Name, o.Name)
				}
			}
		}
	}
	t.Run("StaticHubs", func(t *testing.T) {
		d.NoFramesFromDuring(t, func() { cc.NoFramesFromDuring(t, exchange(a, b, cc, d), a, b) }, a, b)
	})
	t.Run("DynamicHub", func(t *testing.T) {
		a.NoFramesFromDuring(t, func() { cc.NoFramesFromDuring(t, exchange(e, f, cc, a), e, f) }, e, f)
	})
	t.Run("Reverse", func(t *testing.T) {
		a.NoFramesFromDuring(t, func() { b.NoFramesFromDuring(t, exchange(cc, d, a, b), cc, d) }, cc, d)
	})
}
