// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

func twoMembersWithIPs(t *testing.T, ns string) {
	t.Helper()
	vc := &vpnv1alpha1.VPNCluster{}
	if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: "vpn"}, vc); err != nil {
		t.Fatal(err)
	}
	setClusterMembers(t, vc, []vpnv1alpha1.MemberStatus{
		{Name: "vpn-member-0", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100},
		{Name: "vpn-member-1", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100},
	})
}

// TestRelayEndsWhenHubMoves: the owner of a relayed session misses the move
// of its hub (its watch is stalled, its Lease fine), so it would never send
// the client Shutdown; the entry sees the move and ends the relay, and the
// client's next login at the entry is served where the hub is now.
func TestRelayEndsWhenHubMoves(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})
	fz := map[string]*freezer{"vpn-member-0": {}, "vpn-member-1": {}}
	m0, m1 := meshPairWith(t, ns, func(name string, rt http.RoundTripper) http.RoundTripper { return fz[name].wrap(rt) })
	t.Cleanup(fz["vpn-member-1"].watch.resume)

	dyn := ns + "/dyn"
	a := m0.frameLogin(t, dyn, "alice", "dyn-a@m0")
	if n := hubClients(m1.m.Server().Stats().Hubs, dyn); n != 1 {
		t.Fatalf("m1 runs %d sessions of %s, want the relayed one", n, dyn)
	}

	fz["vpn-member-1"].watch.pause()
	moved := time.Now()
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	// Keepalives still cross the relay, so nothing but the entry's teardown
	// ends this session.
	select {
	case err := <-a.end:
		t.Logf("relayed session ended %v after the move: %v", time.Since(moved).Round(time.Millisecond), err)
	case <-time.After(2 * time.Second):
		t.Fatal("the relayed session to the hub's old owner is still open 2 s after the hub moved to the entry")
	}
	eventually(t, 5*time.Second, "old owner's relayed session gone", func() error {
		if n := hubClients(m1.m.Server().Stats().Hubs, dyn); n != 0 {
			return errors.New("m1 still runs it")
		}
		return nil
	})
	m0.frameLogin(t, dyn, "alice", "dyn-a@m0 again")
	if n := hubClients(m0.m.Server().Stats().Hubs, dyn); n != 1 {
		t.Fatalf("m0 runs %d sessions of %s after the move, want 1", n, dyn)
	}
}

// silentPeer accepts mesh connections and never answers: a frozen member
// whose kernel still completes TCP handshakes.
func silentPeer(t *testing.T) string {
	t.Helper()
	ln := loopbackListener(t)
	held := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	return ln.Addr().String()
}

// relayedNow scrapes the member's own metric of sessions it is relaying
// (counted from the moment the relay starts dialling the owner).
func relayedNow(t *testing.T, r *runner) string {
	t.Helper()
	return metricNow(t, r, "hubfleet_server_relayed_sessions")
}

// metricNow scrapes the member's metric name (a series without labels).
func metricNow(t *testing.T, r *runner, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	member.MetricsHandler(r.m.Server(), r.m.MetricsOptions()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}

// TestRelayToSilentOwner: a login relayed to an owner that accepts TCP but
// never answers is refused (Internal, retried by clients) within the
// handshake bound rather than the 10 s login timeout; and when the hub moves
// to the entry while the relay is dialling, the dial is abandoned at once and
// the client's retry is served by the entry.
func TestRelayToSilentOwner(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})
	peerDir := t.TempDir()
	writePeerPKI(t, peerDir)
	silent := silentPeer(t)
	m0 := startMemberWith(t, ns, "vpn-member-0", env.Config, meshSetup{
		peerDir: peerDir, ln: loopbackListener(t),
		peerAddr: func(string, string) string { return silent },
	})
	dyn := ns + "/dyn"
	internal := func(err error) error {
		if le, ok := errors.AsType[*protocol.LoginError](err); !ok || le.Code != protocol.Internal {
			return err
		}
		return nil
	}

	// Wait until m0 routes the hub to m1 (it relays, rather than refusing
	// NotServedHere because its informers or Lease are not there yet).
	var took time.Duration
	eventually(t, 30*time.Second, "a relayed login refused Internal", func() error {
		start := time.Now()
		s, err := m0.login(dyn, "alice")
		took = time.Since(start)
		if err == nil {
			s.conn.Close()
			return errors.New("admitted")
		}
		return internal(err)
	})
	if took > protocol.HandshakeTimeout+1500*time.Millisecond {
		t.Fatalf("the relayed login to a silent owner took %v, want about %v", took, protocol.HandshakeTimeout)
	}
	t.Logf("relay to a silent owner refused after %v", took.Round(time.Millisecond))

	// The hub moves to the entry while a relay is dialling the silent owner.
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		conn, _, err := protocol.Dial(ctx, m0.addr, m0.client, protocol.LoginRequest{Hub: dyn, User: "alice", Password: "alice-pw", Kind: protocol.KindClient})
		if conn != nil {
			conn.Close()
		}
		done <- err
	}()
	eventually(t, protocol.HandshakeTimeout, "the relay dialling", func() error {
		if v := relayedNow(t, m0); v != "1" {
			return errors.New("relayed_sessions " + v)
		}
		return nil
	})
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	select {
	case err := <-done:
		if e := internal(err); e != nil {
			t.Fatalf("login during the move: %v, want Internal", err)
		}
		if d := time.Since(start); d >= protocol.HandshakeTimeout-500*time.Millisecond {
			t.Fatalf("the dial was not abandoned when the hub moved: answered after %v", d)
		}
		t.Logf("relay abandoned %v after the login began", time.Since(start).Round(time.Millisecond))
	case <-time.After(protocol.HandshakeTimeout + 2*time.Second):
		t.Fatal("login during the move never answered")
	}
	m0.mustLogin(t, dyn, "alice")
}

// TestPartitionBetweenMembersOnly: both members reach the API server but not
// each other (an asymmetric partition). Ownership is decided by the API
// server alone, so nothing moves: the owner keeps serving its clients, the
// other member never takes the hub, and a login there is refused with
// Internal (retried by the client) within the relay's dial bound instead
// of hanging or being served by a second copy.
func TestPartitionBetweenMembersOnly(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})
	peerDir := t.TempDir()
	writePeerPKI(t, peerDir)
	silent := silentPeer(t)
	var cut atomic.Bool
	ln0, ln1 := loopbackListener(t), loopbackListener(t)
	addrs := map[string]string{"vpn-member-0": ln0.Addr().String(), "vpn-member-1": ln1.Addr().String()}
	peerAddr := func(member, _ string) string {
		if cut.Load() {
			return silent
		}
		return addrs[member]
	}
	m0 := startMemberWith(t, ns, "vpn-member-0", env.Config, meshSetup{peerDir: peerDir, ln: ln0, peerAddr: peerAddr})
	m1 := startMemberWith(t, ns, "vpn-member-1", env.Config, meshSetup{peerDir: peerDir, ln: ln1, peerAddr: peerAddr})
	dyn := ns + "/dyn"
	owner := m1.frameLogin(t, dyn, "bob", "dyn-b@m1")
	m0.frameLogin(t, dyn, "alice", "dyn-a@m0 (relayed)").conn.Close()

	// Partition: from now on each member dials the other at an address that
	// never answers; a status write makes both recompute their peers.
	cut.Store(true)
	twoMembersWithIPs(t, ns)
	eventually(t, 15*time.Second, "a login at m0 refused Internal within the dial bound", func() error {
		start := time.Now()
		s, err := m0.login(dyn, "alice")
		if err == nil {
			s.conn.Close()
			return errors.New("admitted")
		}
		if le, ok := errors.AsType[*protocol.LoginError](err); !ok || le.Code != protocol.Internal {
			return err
		}
		if d := time.Since(start); d > protocol.HandshakeTimeout+1500*time.Millisecond {
			t.Fatalf("refused after %v: the relay dial is not bounded", d)
		}
		return nil
	})
	if slices.Contains(m0.m.State().Hubs, dyn) {
		t.Fatal("m0 serves the hub placed on m1: two copies under a partition")
	}
	select {
	case err := <-owner.end:
		t.Fatalf("the owner's own session ended under a partition between members: %v", err)
	default:
	}
	m1.mustLogin(t, dyn, "alice")
	if n := hubClients(m1.m.Server().Stats().Hubs, dyn); n < 1 {
		t.Fatalf("m1 runs %d sessions of %s", n, dyn)
	}
}
