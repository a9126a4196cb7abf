// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// A login still being decided — here waiting for a peer to lend a license —
// is not a session in Stats, which the cluster member turns into its Lease
// load: summed over members, loads that counted such logins read more
// sessions than the license (seen end to end: 4 on a license of 2). Once
// admitted it counts; refused, it never did.
func TestStatsCountOnlyAdmittedSessions(t *testing.T) {
	asked := make(chan struct{})
	lend := make(chan bool)
	var m *testMember
	m = startMemberOpts(t, func(c *Config) { c.Licenses = &Licenses{Client: 0, Bridge: 0} }, Options{
		Borrow: func(ctx context.Context, k sessionkind.Kind) bool {
			asked <- struct{}{}
			select {
			case ok := <-lend:
				if ok {
					m.srv.Gate().AddBorrowed(k) // what the cluster member's loans do
				}
				return ok
			case <-ctx.Done():
				return false
			}
		},
	})
	waitBorrowing := func() {
		t.Helper()
		select {
		case <-asked:
		case <-time.After(10 * time.Second):
			t.Fatal("the login never asked to borrow a license")
		}
		if n := m.hubStats(t, "alpha").Clients; n != 0 {
			t.Fatalf("a login waiting for a license counts as %d sessions", n)
		}
	}

	refused := make(chan error, 1)
	go func() { _, _, err := m.login(pw("alpha", "alice", "alice-pw")); refused <- err }()
	waitBorrowing()
	lend <- false
	if err := <-refused; err == nil {
		t.Fatal("admitted without a license")
	}
	if n := m.hubStats(t, "alpha").Clients; n != 0 {
		t.Fatalf("a refused login counts as %d sessions", n)
	}

	admitted := make(chan *client, 1)
	go func() { admitted <- m.connect(t, pw("alpha", "bob", "bob-pw")) }()
	waitBorrowing()
	lend <- true
	<-admitted
	if n := m.hubStats(t, "alpha").Clients; n != 1 {
		t.Fatalf("an admitted session counts as %d sessions, want 1", n)
	}
}
