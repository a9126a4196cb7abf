// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// frameClient is a logged-in client that keeps every frame it receives.
type frameClient struct {
	name string
	conn *protocol.Conn
	rx   chan []byte
	end  chan error // the reader's final error
}

func (r *runner) frameLogin(t *testing.T, hub, user, name string) *frameClient {
	t.Helper()
	return r.frameLoginCaps(t, hub, user, name, 0)
}

// frameLoginCaps is frameLogin offering capabilities caps.
func (r *runner) frameLoginCaps(t *testing.T, hub, user, name string, caps uint32) *frameClient {
	t.Helper()
	var c *frameClient
	eventually(t, 20*time.Second, "login to "+hub+" as "+user, func() error {
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		conn, _, err := protocol.Dial(ctx, r.addr, r.client, protocol.LoginRequest{Hub: hub, User: user, Password: user + "-pw", Kind: protocol.KindClient, Capabilities: caps})
		if err != nil {
			return err
		}
		c = &frameClient{name: name, conn: conn, rx: make(chan []byte, 256), end: make(chan error, 1)}
		return nil
	})
	t.Cleanup(func() { c.conn.Close() })
	go func() { _ = c.conn.RunKeepalive(bg()) }()
	go func() {
		for {
			if _, err := c.conn.ReadFrames(func(b []byte) {
				select {
				case c.rx <- bytes.Clone(b):
				default: // a test that floods past 256 frames fails on what it misses
				}
			}); err != nil {
				c.end <- err
				return
			}
		}
	}()
	return c
}

// mac is a locally administered unicast address ending in n.
func mac(n byte) []byte { return []byte{0x02, 0, 0, 0, 0, n} }

var broadcast = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// frame is a minimal Ethernet frame (experimental EtherType 0x88b5) whose
// payload says what it is, so a receiver can tell frames apart.
func frame(dst, src []byte, tag string) []byte {
	f := append(append(append([]byte{}, dst...), src...), 0x88, 0xb5)
	f = append(f, tag...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

func (c *frameClient) send(t *testing.T, f []byte) {
	t.Helper()
	if err := c.conn.WriteFrames([][]byte{f}); err != nil {
		t.Fatalf("%s: sending: %v", c.name, err)
	}
}

// receive waits up to within for a frame whose payload starts with tag,
// skipping other frames.
func (c *frameClient) receive(within time.Duration, tag string) error {
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for {
		select {
		case f := <-c.rx:
			if bytes.HasPrefix(f[14:], []byte(tag)) {
				return nil
			}
		case <-timeout.C:
			return fmt.Errorf("%s: no frame %q within %v", c.name, tag, within)
		}
	}
}

// TestMeshRoutingAndStaticFabric runs two members with their meshes on
// loopback: a login at m0 for a dynamic hub assigned to m1 is relayed and its
// client exchanges frames with a client logged in at m1; a static hub with an
// instance on each is one segment across the mesh (broadcast, then unicast
// both ways after learning); a client of another static hub sees none of it.
func TestMeshRoutingAndStaticFabric(t *testing.T) {
	ns := fixture(t)
	vc := &vpnv1alpha1.VPNCluster{}
	if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: "vpn"}, vc); err != nil {
		t.Fatal(err)
	}
	setClusterMembers(t, vc, []vpnv1alpha1.MemberStatus{
		{Name: "vpn-member-0", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100},
		{Name: "vpn-member-1", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100},
		{Name: "vpn-member-2", Weight: 100}, // no IP yet: not a peer
	})
	both := []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}, {Member: "vpn-member-1"}}
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})
	newHub(t, ns, "lan", vpnv1alpha1.HubStatic)
	setStatus(t, ns, "lan", vpnv1alpha1.VirtualHubStatus{Instances: both})
	newHub(t, ns, "other", vpnv1alpha1.HubStatic)
	setStatus(t, ns, "other", vpnv1alpha1.VirtualHubStatus{Instances: both})

	m0, m1, blockers := meshPair(t, ns)

	// Clients of the other hub on both members, listening throughout.
	o0 := m0.frameLogin(t, ns+"/other", "bob", "other@m0")
	o1 := m1.frameLogin(t, ns+"/other", "bob", "other@m1")

	// Dynamic hub: a logs in at m0 (relayed to m1), b at m1.
	dyn := ns + "/dyn"
	a := m0.frameLogin(t, dyn, "alice", "dyn-a@m0")
	b := m1.frameLogin(t, dyn, "bob", "dyn-b@m1")
	if st := m1.m.Server().Stats(); hubClients(st.Hubs, dyn) != 2 {
		t.Fatalf("m1 runs %d sessions of %s, want 2 (the relayed one included)", hubClients(st.Hubs, dyn), dyn)
	}
	if st := m0.m.Server().Stats(); hubClients(st.Hubs, dyn) != 0 || st.Sessions != 1 {
		t.Fatalf("m0 holds dynamic-hub sessions itself: %+v", st)
	}
	a.send(t, frame(broadcast, mac(0xa), "dyn-bcast"))
	if err := b.receive(10*time.Second, "dyn-bcast"); err != nil {
		t.Fatal(err)
	}
	b.send(t, frame(mac(0xa), mac(0xb), "dyn-to-a"))
	if err := a.receive(10*time.Second, "dyn-to-a"); err != nil {
		t.Fatal(err)
	}

	// Static hub: c at m0, d at m1. The link may still be forming: broadcast
	// until d hears one.
	lan := ns + "/lan"
	c := m0.frameLogin(t, lan, "alice", "lan-c@m0")
	d := m1.frameLogin(t, lan, "bob", "lan-d@m1")
	eventually(t, 20*time.Second, "broadcast from m0 reaches m1 over the mesh", func() error {
		c.send(t, frame(broadcast, mac(0xc), "lan-bcast"))
		return d.receive(500*time.Millisecond, "lan-bcast")
	})
	d.send(t, frame(mac(0xc), mac(0xd), "lan-to-c"))
	if err := c.receive(10*time.Second, "lan-to-c"); err != nil {
		t.Fatal(err)
	}
	c.send(t, frame(mac(0xd), mac(0xc), "lan-to-d"))
	if err := d.receive(10*time.Second, "lan-to-d"); err != nil {
		t.Fatal(err)
	}
	if peers := m0.m.mesh.HubPeers(lan); len(peers) != 1 || peers[0] != "vpn-member-1" {
		t.Fatalf("m0 shares %s with %v, want [vpn-member-1]", lan, peers)
	}

	// Isolation: the other hub's clients, connected before any of these frames
	// were sent and on the same members and link, got none of them.
	for _, o := range []*frameClient{o0, o1} {
		select {
		case f := <-o.rx:
			t.Fatalf("%s received a frame of another hub: % x", o.name, f)
		default:
		}
	}

	// The owner fenced: it drops the dynamic hub, so the relayed session gets
	// the owner's Shutdown through the relay; with no operator running, m0
	// sees m1's Lease expire, claims it and takes the hub (failover.go).
	blockers["vpn-member-1"].on.Store(true)
	a.shutDown(t, 15*time.Second)
	waitMoved(t, ns, "dyn", "vpn-member-0", 15*time.Second)
	m0.frameLogin(t, dyn, "alice", "dyn@m0")

	// The entry fenced, the other back: m0 relays nothing (its placement
	// view may be stale) and refuses itself, and m1, its Lease taken back,
	// takes the hub from m0 the same way.
	blockers["vpn-member-0"].on.Store(true)
	blockers["vpn-member-1"].on.Store(false)
	eventually(t, 15*time.Second, "m0 fenced", func() error {
		if !m0.m.State().Fenced {
			return errors.New("not fenced")
		}
		return nil
	})
	notServedAt(t, m0, dyn, "vpn-member-0")
	waitMoved(t, ns, "dyn", "vpn-member-1", 15*time.Second)
	m1.frameLogin(t, dyn, "bob", "dyn@m1-again")
}

// shutDown waits for c's session to end with a protocol Shutdown.
func (c *frameClient) shutDown(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-c.end:
		if !errors.Is(err, protocol.ErrShutdown) {
			t.Fatalf("%s ended with %v, want a Shutdown", c.name, err)
		}
	case <-time.After(within):
		t.Fatalf("%s still open after %v", c.name, within)
	}
}

// notServedAt waits until a login at r for hub (which exists) is refused with NotServedHere by
// member by (the refusal names the member that decided it).
func notServedAt(t *testing.T, r *runner, hub, by string) {
	t.Helper()
	eventually(t, 15*time.Second, "login to "+hub+" refused by "+by, func() error {
		s, err := r.login(hub, "alice")
		if err == nil {
			s.conn.Close()
			return errors.New("login succeeded")
		}
		le, ok := errors.AsType[*protocol.LoginError](err)
		if !ok {
			return err
		}
		if le.Code != protocol.NotServedHere || !strings.Contains(le.Message, "member "+by) {
			return fmt.Errorf("refused with %v: %s", le.Code, le.Message)
		}
		return nil
	})
}

func hubClients(hubs []member.HubStats, name string) int {
	for _, h := range hubs {
		if h.Name == name {
			return h.Clients
		}
	}
	return 0
}

func setClusterMembers(t *testing.T, vc *vpnv1alpha1.VPNCluster, members []vpnv1alpha1.MemberStatus) {
	t.Helper()
	patch := client.RawPatch("application/merge-patch+json", mustJSON(t, map[string]any{"status": map[string]any{"members": members}}))
	if err := k8s.Status().Patch(bg(), vc, patch); err != nil {
		t.Fatal(err)
	}
}

// meshPair runs members vpn-member-0 and vpn-member-1 of ns's cluster "vpn"
// in-process with their meshes on loopback ports (the VPNCluster status gives
// both pod IP 127.0.0.1; an address override gives each its own port), each
// behind a leaseBlocker that can cut its Lease renewals.
func meshPair(t *testing.T, ns string) (m0, m1 *runner, blockers map[string]*leaseBlocker) {
	t.Helper()
	blockers = map[string]*leaseBlocker{"vpn-member-0": {}, "vpn-member-1": {}}
	m0, m1 = meshPairWith(t, ns, func(name string, rt http.RoundTripper) http.RoundTripper {
		b := blockers[name]
		b.next = rt
		return b
	})
	return m0, m1, blockers
}

// meshPairWith is meshPair with each member's API transport wrapped by wrap.
func meshPairWith(t *testing.T, ns string, wrap func(member string, rt http.RoundTripper) http.RoundTripper) (m0, m1 *runner) {
	t.Helper()
	peerDir := t.TempDir()
	writePeerPKI(t, peerDir)
	lns := map[string]*meshSetup{}
	addrs := map[string]string{}
	for _, name := range []string{"vpn-member-0", "vpn-member-1"} {
		ln := loopbackListener(t)
		addrs[name] = ln.Addr().String()
		lns[name] = &meshSetup{peerDir: peerDir, ln: ln}
	}
	// Both members' status says 127.0.0.1; the override gives each its own port.
	for _, ms := range lns {
		ms.peerAddr = func(member, podIP string) string {
			if podIP != "127.0.0.1" {
				t.Errorf("peer %s has pod IP %q", member, podIP)
			}
			return addrs[member]
		}
	}
	rcs := map[string]*rest.Config{}
	for _, name := range []string{"vpn-member-0", "vpn-member-1"} {
		rc := rest.CopyConfig(env.Config)
		rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return wrap(name, rt) }
		rcs[name] = rc
	}
	m0 = startMemberWith(t, ns, "vpn-member-0", rcs["vpn-member-0"], *lns["vpn-member-0"])
	m1 = startMemberWith(t, ns, "vpn-member-1", rcs["vpn-member-1"], *lns["vpn-member-1"])
	return m0, m1
}
