// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// TestRouteRelayAndServeRelayed: an entry member that does not serve hub
// "beta" routes its logins to the owner (here a plain byte pipe into
// owner.ServeRelayed, standing in for the mesh); the owner authenticates the
// relayed login itself and runs the session on its hub, which then switches
// frames with a direct client; an unreachable owner gives Internal; a client
// claiming to be relayed is refused; a relayed login for a hub the owner does
// not serve is refused, never relayed again.
func TestRouteRelayAndServeRelayed(t *testing.T) {
	// The owner could route too; a relayed login must not take that path.
	var ownerRouted atomic.Int32
	owner := startMemberOpts(t, func(c *Config) { c.Hubs = c.Hubs[1:] }, Options{ // beta only
		Route: func(*protocol.LoginRequest) (string, bool) { ownerRouted.Add(1); return "elsewhere", true },
		Relay: func(context.Context, string, protocol.LoginRequest, net.Conn) error {
			return fmt.Errorf("%w: the owner must not relay", ErrRelayUnreachable)
		},
	})

	var unreachable atomic.Bool
	var routedTo atomic.Value
	relay := func(_ context.Context, peer string, req protocol.LoginRequest, c net.Conn) error {
		routedTo.Store(peer)
		if unreachable.Load() {
			return fmt.Errorf("%w: test", ErrRelayUnreachable)
		}
		req.Relayed, req.RelayEntry, req.RelayClientAddr = true, "entry", c.RemoteAddr().String()
		a, b := net.Pipe()
		go owner.srv.ServeRelayed(&req, b)
		// A byte splice, as the mesh does once the login is sent: the owner's
		// result and the session cross it unchanged.
		go func() { _, _ = io.Copy(a, c); a.Close() }()
		_, err := io.Copy(c, a)
		c.Close()
		return err
	}
	entry := startMemberOpts(t, func(c *Config) { c.Hubs = c.Hubs[:1] }, Options{ // alpha only
		Route: func(req *protocol.LoginRequest) (string, bool) {
			return "owner", req.Hub == "beta" || req.Hub == "gamma"
		},
		Relay: relay,
	})

	// Relayed and direct clients share the owner's hub.
	relayed := entry.connect(t, pw("beta", "carol", "carol-pw"))
	if got := routedTo.Load(); got != "owner" {
		t.Fatalf("routed to %v", got)
	}
	direct := owner.connect(t, pw("beta", "carol", "carol-pw"))
	if st := owner.hubStats(t, "beta"); st.Clients != 2 {
		t.Fatalf("owner runs %d sessions of beta, want 2", st.Clients)
	}
	if st := entry.srv.Stats(); st.Sessions != 0 {
		t.Fatalf("the entry counts %d sessions of its own", st.Sessions)
	}
	relayed.send(t, eth(broadcast, mac(1), "hello"))
	direct.expect(t, eth(broadcast, mac(1), "hello"))
	direct.send(t, eth(mac(1), mac(2), "reply"))
	relayed.expect(t, eth(mac(1), mac(2), "reply"))

	// The owner checks the password the relayed login carries.
	_, _, err := entry.login(pw("beta", "carol", "wrong"))
	if le := loginErr(t, err); le.Code != protocol.BadCredentials {
		t.Fatalf("wrong password through the relay: %v", le)
	}
	// A hub the owner does not serve: refused there, not relayed a second time.
	_, _, err = entry.login(pw("gamma", "carol", "carol-pw"))
	if le := loginErr(t, err); le.Code != protocol.UnknownHub {
		t.Fatalf("relayed login for a hub the owner lacks: %v", le)
	}
	if n := ownerRouted.Load(); n != 0 {
		t.Fatalf("the owner consulted Route %d times for relayed logins", n)
	}
	// A hub nobody routes stays UnknownHub at the entry.
	_, _, err = entry.login(pw("delta", "carol", "carol-pw"))
	if le := loginErr(t, err); le.Code != protocol.UnknownHub {
		t.Fatalf("unrouted hub: %v", le)
	}
	// Owner unreachable: Internal, so the client retries.
	unreachable.Store(true)
	_, _, err = entry.login(pw("beta", "carol", "carol-pw"))
	if le := loginErr(t, err); le.Code != protocol.Internal {
		t.Fatalf("unreachable owner: %v", le)
	}
	// Clients must not set the relay fields on the client port.
	req := pw("beta", "carol", "carol-pw")
	req.Relayed, req.RelayEntry = true, "forged"
	_, _, err = owner.login(req)
	if le := loginErr(t, err); le.Code != protocol.BadRequest {
		t.Fatalf("client claiming a relay: %v", le)
	}

	// Ending the relayed client's session ends its owner-side session.
	relayed.conn.Close()
	eventually(t, 5*time.Second, "relayed session gone from the owner", func() bool {
		return owner.hubStats(t, "beta").Clients == 1
	})
}
