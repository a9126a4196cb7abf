// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// No operator runs in these tests: every move is a member's own.

// dynOnMember1 is a fixture whose cluster lists two members with pod IPs and
// whose dynamic hub "dyn" is assigned to vpn-member-1.
func dynOnMember1(t *testing.T) string {
	t.Helper()
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})
	return ns
}

func hubStatus(t *testing.T, ns, name string) vpnv1alpha1.VirtualHubStatus {
	t.Helper()
	var h vpnv1alpha1.VirtualHub
	if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: name}, &h); err != nil {
		t.Fatal(err)
	}
	return h.Status
}

func memberLease(t *testing.T, ns, name string) *coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: name}, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// waitMoved waits until hub is assigned to member to and returns its status.
func waitMoved(t *testing.T, ns, hub, to string, within time.Duration) vpnv1alpha1.VirtualHubStatus {
	t.Helper()
	var st vpnv1alpha1.VirtualHubStatus
	eventually(t, within, hub+" moved to "+to, func() error {
		st = hubStatus(t, ns, hub)
		if st.AssignedMember != to {
			return fmt.Errorf("assigned to %q", st.AssignedMember)
		}
		return nil
	})
	return st
}

// TestPeerMovesDeadMembersHubs: the owner of a dynamic hub dies (its
// listeners close, as when the process is killed: the node's kernel refuses
// connections to its ports). The surviving member sees the mesh link end and
// the refused reconnect, claims the dead member's Lease without waiting for
// it to expire, and moves the hub to itself; clients are served there.
func TestPeerMovesDeadMembersHubs(t *testing.T) {
	ns := dynOnMember1(t)
	m0, m1, _ := meshPair(t, ns)
	dyn := ns + "/dyn"
	m1.frameLogin(t, dyn, "bob", "dyn@m1")
	eventually(t, 20*time.Second, "mesh link up", func() error {
		if !slices.Contains(m0.m.mesh.Peers(), "vpn-member-1") {
			return errors.New("no link to vpn-member-1")
		}
		return nil
	})

	died := time.Now()
	m1.stop()
	st := waitMoved(t, ns, "dyn", "vpn-member-0", 10*time.Second)
	took := time.Since(died)
	t.Logf("hub moved %v after the owner died", took.Round(time.Millisecond))
	if r := st.LastReassignment; r == nil || r.From != "vpn-member-1" || r.To != "vpn-member-0" || r.Reason != ReasonMemberDead {
		t.Fatalf("lastReassignment %+v, want vpn-member-1 -> vpn-member-0 for %s (the death certificate, not a Lease expiry)", r, ReasonMemberDead)
	}
	l := memberLease(t, ns, "vpn-member-1")
	c, ok := memberlease.Claimed("vpn-member-1", l.Spec.HolderIdentity, l.Annotations)
	if !ok || c.By != "vpn-member-0" || c.Reason != ReasonMemberDead {
		t.Fatalf("the dead member's Lease: holder %v, claim %+v; want claimed by vpn-member-0", l.Spec.HolderIdentity, c)
	}
	m0.frameLogin(t, dyn, "alice", "dyn@m0")
	if n := hubClients(m0.m.Server().Stats().Hubs, dyn); n != 1 {
		t.Fatalf("m0 runs %d sessions of %s after the move, want 1", n, dyn)
	}
}

// TestPeerMovesSilentMembersHubs: the owner is alive but cannot reach the API
// server (its Lease renewals fail). It fences itself when its Lease expires;
// the other member judges the same expiry, claims the Lease and moves the
// hub. When the owner reaches the API server again its renewal conflicts with
// the claim: it takes its Lease back but never serves the moved hub.
func TestPeerMovesSilentMembersHubs(t *testing.T) {
	ns := dynOnMember1(t)
	m0, m1, blockers := meshPair(t, ns)
	dyn := ns + "/dyn"
	owner := m1.frameLogin(t, dyn, "bob", "dyn@m1")

	blockers["vpn-member-1"].on.Store(true)
	owner.shutDown(t, 10*time.Second) // fenced by its own clock
	st := waitMoved(t, ns, "dyn", "vpn-member-0", 15*time.Second)
	if r := st.LastReassignment; r == nil || r.Reason != ReasonLeaseExpired {
		t.Fatalf("lastReassignment %+v, want reason %s", r, ReasonLeaseExpired)
	}
	m0.frameLogin(t, dyn, "alice", "dyn@m0")

	blockers["vpn-member-1"].on.Store(false)
	eventually(t, 15*time.Second, "vpn-member-1 takes its Lease back and is ready", func() error {
		if slices.Contains(m1.m.State().Hubs, dyn) {
			t.Fatalf("vpn-member-1 serves %s after it was moved away (split brain)", dyn)
		}
		l := memberLease(t, ns, "vpn-member-1")
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "vpn-member-1" {
			return fmt.Errorf("holder %v", l.Spec.HolderIdentity)
		}
		return m1.m.Ready()
	})
	if slices.Contains(m1.m.State().Hubs, dyn) {
		t.Fatalf("vpn-member-1 serves %s after it was moved away (split brain)", dyn)
	}
	// A login at the old owner is relayed to the new one, not served there.
	m1.frameLogin(t, dyn, "bob", "dyn@m1, relayed")
	if n := hubClients(m1.m.Server().Stats().Hubs, dyn); n != 0 {
		t.Fatalf("vpn-member-1 runs %d sessions of %s itself, want none (relayed)", n, dyn)
	}
	if slices.Contains(m1.m.State().Hubs, dyn) {
		t.Fatalf("vpn-member-1 serves %s after it was moved away (split brain)", dyn)
	}
	if n := hubClients(m0.m.Server().Stats().Hubs, dyn); n != 2 {
		t.Fatalf("vpn-member-0 runs %d sessions of %s, want 2 (its own and the relayed one)", n, dyn)
	}
}

// TestClaimedMemberFencesAtOnce: a claim on a member that is in fact alive
// (a peer's evidence was wrong, or it was slow) wins against its next
// renewal: the member fences its dynamic hubs as after an expiry, re-reads
// the placement, takes its Lease back and serves the hub again, since the
// hub was not moved.
func TestClaimedMemberFencesAtOnce(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	r := startMember(t, ns, "vpn-member-0", env.Config)
	dyn := ns + "/dyn"
	s := r.mustLogin(t, dyn, "alice")

	eventually(t, 10*time.Second, "claim written", func() error {
		l := memberLease(t, ns, "vpn-member-0")
		holder := memberpod.ClaimPrefix + "vpn-member-1"
		l.Spec.HolderIdentity = &holder
		l.Annotations[memberpod.AnnotationClaim] = memberlease.EncodeClaim(memberlease.Claim{
			By: "vpn-member-1", Reason: ReasonMemberDead, Message: "test", Time: metav1.Now().Time,
		})
		return k8s.Update(bg(), l) // a conflict with a renewal: try again
	})
	s.shutDown(t, 5*time.Second)
	eventually(t, 15*time.Second, dyn+" served again", func() error {
		if err := r.m.Ready(); err != nil {
			return err
		}
		s, err := r.login(dyn, "bob")
		if err != nil {
			return err
		}
		s.conn.Close()
		return nil
	})
	if l := memberLease(t, ns, "vpn-member-0"); *l.Spec.HolderIdentity != "vpn-member-0" || l.Annotations[memberpod.AnnotationClaim] != "" {
		t.Fatalf("Lease not taken back: holder %s, annotations %v", *l.Spec.HolderIdentity, l.Annotations)
	}
}

func TestJudgePeers(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	lease := func(name string, renewed time.Duration, holder string) *coordinationv1.Lease {
		rt := metav1.NewMicroTime(now.Add(-renewed))
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &rt},
		}
	}
	in := judgeInputs{
		self: "m-0", names: []string{"m-0", "m-1", "m-2", "m-3", "m-4", "m-5"}, duration: 3 * time.Second, now: now,
		leases: map[string]*coordinationv1.Lease{
			"m-1": lease("m-1", time.Second, "m-1"),                       // fresh
			"m-2": lease("m-2", 4*time.Second, "m-2"),                     // expired
			"m-3": lease("m-3", time.Second, memberpod.ClaimPrefix+"m-5"), // claimed
			"m-4": lease("m-4", 500*time.Millisecond, "m-4"),              // fresh, but its process is gone
		},
		dead: map[string]deathCert{"m-4": {at: now.Add(-time.Second), msg: "refused"}, "m-1": {at: now.Add(-time.Minute), msg: "old"}},
	}
	peers, next := judgePeers(in)
	want := map[string]string{"m-0": "live", "m-1": "live", "m-2": ReasonLeaseExpired, "m-3": "LeaseClaimed", "m-4": ReasonMemberDead, "m-5": "unknown"}
	for _, p := range peers {
		got := "unknown"
		switch {
		case p.live:
			got = "live"
		case p.failed:
			got = p.reason
		}
		if got != want[p.name] {
			t.Errorf("%s judged %s, want %s (%s)", p.name, got, want[p.name], p.msg)
		}
	}
	if wantNext := now.Add(2 * time.Second); !next.Equal(wantNext) {
		t.Errorf("next verdict change at %v, want m-1's expiry %v", next, wantNext)
	}
}

// TestProbeMesh: a port nothing listens on is a death; a listener that holds
// the connection (a live mesh server waiting for a ClientHello) is alive,
// and so is one that accepts and closes (not a kernel's refusal).
func TestProbeMesh(t *testing.T) {
	if alive, why := probeMesh(silentPeer(t)); !alive {
		t.Fatalf("a listening mesh port judged dead (%q)", why)
	}
	closed := loopbackListener(t)
	addr := closed.Addr().String()
	closed.Close()
	if alive, why := probeMesh(addr); alive || why != "" {
		t.Fatalf("a closed port judged alive=%v (%q), want dead", alive, why)
	}
	closer := loopbackListener(t)
	go func() {
		for {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if alive, why := probeMesh(closer.Addr().String()); !alive {
		t.Fatalf("a port that accepts and closes judged dead (%q): only the kernel's refusal is a death", why)
	}
}

// TestLoginHeldWhileDeadOwnersHubMoves: a login reaches an entry member just
// after the hub's owner died and before the hub moved. The entry's relay is
// refused by the dead owner's port; instead of refusing the client (which
// would back off and retry), it holds the login until the move lands — here
// on the entry itself, which then serves it.
func TestLoginHeldWhileDeadOwnersHubMoves(t *testing.T) {
	ns := dynOnMember1(t)
	m0, m1, blockers := meshPair(t, ns)
	dyn := ns + "/dyn"
	m0.frameLogin(t, dyn, "alice", "dyn@m0, relayed").conn.Close()

	// m0 cannot write Leases for a moment: it gets the death certificate but
	// cannot claim, so the hub stays on the dead member while a login arrives.
	blockers["vpn-member-0"].on.Store(true)
	m1.stop()
	done := make(chan error, 1)
	go func() {
		s, err := m0.login(dyn, "bob")
		if err == nil {
			s.conn.Close()
		}
		done <- err
	}()
	eventually(t, 5*time.Second, "the login held at the entry", func() error {
		if v := relayedNow(t, m0); v != "1" {
			return errors.New("relayed_sessions " + v)
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("the login was answered (%v) before the hub moved; want it held", err)
	default:
	}
	blockers["vpn-member-0"].on.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the held login: %v, want it served once the hub moved here", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held login never answered")
	}
	if st := hubStatus(t, ns, "dyn"); st.AssignedMember != "vpn-member-0" {
		t.Fatalf("hub assigned to %q, want vpn-member-0", st.AssignedMember)
	}
}
