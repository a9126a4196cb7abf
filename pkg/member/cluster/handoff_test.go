// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// TestHandoffOfRelayedSession: a client that offers CapHandoff and lands on
// the member without its hub is handed over to the hub's member: the owner
// counts the handoff, the session switches frames both ways with a client
// of the owner, and a client without the capability is still relayed frame
// by frame beside it. When the hub moves, the entry ends the handed-off
// session as it ends a relayed one, and the owner's side goes too. A client
// cannot present a handoff token of its own on the client port.
func TestHandoffOfRelayedSession(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})
	m0, m1, _ := meshPair(t, ns)
	dyn := ns + "/dyn"

	h := m0.frameLoginCaps(t, dyn, "alice", "handoff@m0", protocol.CapHandoff|protocol.CapGSO)
	if got := metricNow(t, m1, "hubfleet_server_handoffs_total"); got != "1" {
		t.Fatalf("owner's handoffs_total = %q after a CapHandoff login at the entry, want 1", got)
	}
	if got := relayedNow(t, m0); got != "1" {
		t.Fatalf("entry's relayed_sessions = %q, want 1 (the byte copy)", got)
	}
	legacy := m0.frameLogin(t, dyn, "bob", "legacy@m0")
	b := m1.frameLogin(t, dyn, "bob", "direct@m1")
	if got := metricNow(t, m1, "hubfleet_server_handoffs_total"); got != "1" {
		t.Fatalf("handoffs_total = %q after a login without CapHandoff, want still 1", got)
	}
	if n := hubClients(m1.m.Server().Stats().Hubs, dyn); n != 3 {
		t.Fatalf("owner runs %d sessions of %s, want 3", n, dyn)
	}

	h.send(t, frame(broadcast, mac(1), "from-handoff"))
	for _, c := range []*frameClient{b, legacy} {
		if err := c.receive(5*time.Second, "from-handoff"); err != nil {
			t.Fatal(err)
		}
	}
	b.send(t, frame(mac(1), mac(2), "to-handoff"))
	if err := h.receive(5*time.Second, "to-handoff"); err != nil {
		t.Fatal(err)
	}
	legacy.send(t, frame(mac(1), mac(3), "legacy-to-handoff"))
	if err := h.receive(5*time.Second, "legacy-to-handoff"); err != nil {
		t.Fatal(err)
	}

	// A handoff token on the client port is refused: only a connection an
	// entry handed over may carry one.
	ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
	defer cancel()
	tok, _ := protocol.NewHandoffToken()
	_, _, err := protocol.Dial(ctx, m1.addr, m1.client, protocol.LoginRequest{Hub: dyn, User: "alice", Kind: protocol.KindClient, HandoffToken: tok})
	if le, ok := errors.AsType[*protocol.LoginError](err); !ok || le.Code != protocol.BadRequest {
		t.Fatalf("a client's own handoff token: %v, want BadRequest", err)
	}

	// The hub moves to the entry: both relays end, the handed-off one too.
	moved := time.Now()
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	select {
	case err := <-h.end:
		t.Logf("handed-off session ended %v after the move: %v", time.Since(moved).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("the handed-off session to the hub's old owner is still open 5 s after the hub moved")
	}
	eventually(t, 5*time.Second, "old owner's sessions of the hub gone", func() error {
		if n := hubClients(m1.m.Server().Stats().Hubs, dyn); n != 0 {
			return errors.New("m1 still runs some")
		}
		return nil
	})
	// Served at the entry now: no relay, no handoff.
	m0.frameLoginCaps(t, dyn, "alice", "handoff@m0 again", protocol.CapHandoff)
	if n := hubClients(m0.m.Server().Stats().Hubs, dyn); n != 1 {
		t.Fatalf("m0 runs %d sessions of %s after the move, want 1", n, dyn)
	}
}

// TestUDPForHandedOffSession: alice's login lands on member-1, which hands
// her session over to member-0, the hub's member. Her UDP keys then come
// from her own TLS session with member-0 — member-1 exports nothing and
// holds no key of hers — and her datagrams, sent to member-1 as a Service
// would, still reach member-0 by the session ID's tag, and member-0's reach
// her from member-1's socket.
func TestUDPForHandedOffSession(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	m0, m1, m1UDP := udpMembersBehindOnePort(t, ns)
	dyn := ns + "/dyn"
	bob := m0.frameLogin(t, dyn, "bob", "bob@m0")

	alice, res := m1.udpLogin(t, dyn, "alice", protocol.CapHandoff)
	if got := metricNow(t, m0, "hubfleet_server_handoffs_total"); got != "1" {
		t.Fatalf("member-0 handoffs_total = %q, want 1", got)
	}
	if res.Capabilities&protocol.CapHandoff != 0 {
		t.Fatalf("final result capabilities %#x: CapHandoff is for the first result only", res.Capabilities)
	}
	m1.m.relays.mu.Lock()
	n := len(m1.m.relays.udp)
	m1.m.relays.mu.Unlock()
	if n != 0 {
		t.Fatalf("the entry holds UDP exporters for %d sessions; a handed-off session needs none", n)
	}
	exp := datagram.TLSExporter(alice.NetConn().(*tls.Conn).ConnectionState())
	uc := newUDPTestClient(t, res, exp, m1UDP)
	eventually(t, 20*time.Second, "a frame from alice's datagrams at bob", func() error {
		tag := "handoff-udp-in " + time.Now().String()
		uc.sendData(t, frame(mac(2), mac(1), tag))
		return bob.receive(300*time.Millisecond, tag)
	})
	uc.receiveByDatagram(t, bob, "handoff-udp-out ", m1UDP)
}
