// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/hub"
)

// member is a node with its hubs and one stand-in session per hub.
type member struct {
	*node
	hubs     map[string]*hub.Hub
	sessions map[string]*session
}

func newMember(t *testing.T, name, addr string, conf *tls.Config, id byte, hubs ...string) *member {
	t.Helper()
	mb := &member{node: startNode(t, name, addr, conf), hubs: map[string]*hub.Hub{}, sessions: map[string]*session{}}
	for i, hn := range hubs {
		h := hub.New(hn, hub.Options{})
		t.Cleanup(h.Close)
		mb.hubs[hn] = h
		mb.sessions[hn] = &session{p: h.Attach(hub.PortSession, "client"), src: mac(id*16 + byte(i))}
		mb.m.AttachHub(hn, h)
	}
	return mb
}

// peerPort returns the stats of mb's port for hubName toward peer.
func (mb *member) peerPort(t *testing.T, hubName, peer string) hub.PortStats {
	t.Helper()
	for _, s := range mb.m.Stats() {
		if s.Hub == hubName && s.Peer == peer {
			return s.PortStats
		}
	}
	t.Fatalf("%s has no %s port toward %s", mb.name, hubName, peer)
	return hub.PortStats{}
}

// sentTo is how many frames mb has handed to its hubName port toward peer,
// sent or still queued.
func (mb *member) sentTo(t *testing.T, hubName, peer string) uint64 {
	s := mb.peerPort(t, hubName, peer)
	return s.FramesOut + uint64(s.Queued)
}

// waitIn waits until mb's hub has switched n frames: Forward publishes its
// counters after queueing, so from then on every copy the hub made is in a
// queue or already dequeued.
func (mb *member) waitIn(t *testing.T, hubName string, n uint64) {
	t.Helper()
	waitFor(t, mb.name+"/"+hubName+" switching its frames", func() bool {
		return mb.hubs[hubName].Stats().FramesIn >= n
	})
	if got := mb.hubs[hubName].Stats().FramesIn; got != n {
		t.Fatalf("%s/%s switched %d frames, want %d", mb.name, hubName, got, n)
	}
}

func TestStaticHubFabric(t *testing.T) {
	ca := newTestCA(t)
	m0 := newMember(t, "m0", "127.0.0.1:0", ca.conf, 1, "office", "lab", "part")
	m1 := newMember(t, "m1", "127.0.0.1:0", ca.conf, 2, "office", "lab", "part")
	m2 := newMember(t, "m2", "127.0.0.1:0", ca.conf, 3, "office", "lab")
	connect(m0.node, m1.node, m2.node)
	waitShared(t, m0.node, "office", "m1", "m2")
	waitShared(t, m1.node, "office", "m0", "m2")
	waitShared(t, m2.node, "office", "m0", "m1")
	waitShared(t, m0.node, "lab", "m1", "m2")
	waitShared(t, m1.node, "lab", "m0", "m2")
	waitShared(t, m2.node, "lab", "m0", "m1")
	waitShared(t, m0.node, "part", "m1")
	waitShared(t, m1.node, "part", "m0")

	s0, s1, s2 := m0.sessions["office"], m1.sessions["office"], m2.sessions["office"]

	// Broadcast from m0 reaches m1 and m2 once each.
	s0.send(broadcast, 1)
	if got := s1.recv(t); got != 1 {
		t.Fatalf("m1 got frame %d, want 1", got)
	}
	if got := s2.recv(t); got != 1 {
		t.Fatalf("m2 got frame %d, want 1", got)
	}
	m1.waitIn(t, "office", 1)
	m2.waitIn(t, "office", 1)
	// Split horizon: neither receiver passed the frame on to the other peer,
	// so no second copy can ever arrive, and none is waiting locally.
	if n := m1.sentTo(t, "office", "m2"); n != 0 {
		t.Fatalf("m1 forwarded %d frames from m0 to m2: split horizon broken", n)
	}
	if n := m2.sentTo(t, "office", "m1"); n != 0 {
		t.Fatalf("m2 forwarded %d frames from m0 to m1: split horizon broken", n)
	}
	for _, s := range []*session{s0, s1, s2} {
		if q := s.p.Queued(); q != 0 {
			t.Fatalf("session %x has %d extra frames queued", s.src, q)
		}
	}

	// Unicast after learning: m1 learned s0's MAC behind m0, so its reply
	// goes to m0 only; then m0 learned s1's MAC behind m1.
	s1.send(s0.src, 2)
	if n := m1.sentTo(t, "office", "m2"); n != 0 {
		t.Fatalf("m1 sent a unicast for a MAC behind m0 to m2 too (%d frames)", n)
	}
	if got := s0.recv(t); got != 2 {
		t.Fatalf("m0 got frame %d, want 2", got)
	}
	m0.waitIn(t, "office", 2)
	s0.send(s1.src, 3)
	if got := s1.recv(t); got != 3 {
		t.Fatalf("m1 got frame %d, want 3", got)
	}
	if n := m0.sentTo(t, "office", "m2"); n != 1 {
		t.Fatalf("m0 sent %d office frames to m2, want 1 (the broadcast only)", n)
	}
	if n := m0.sentTo(t, "office", "m1"); n != 2 {
		t.Fatalf("m0 sent %d office frames to m1, want 2", n)
	}

	// Isolation: lab never saw an office frame on any member.
	for _, mb := range []*member{m0, m1, m2} {
		if st := mb.hubs["lab"].Stats(); st.FramesIn != 0 || mb.sessions["lab"].p.Queued() != 0 {
			t.Fatalf("%s/lab saw %d frames: office leaked into lab", mb.name, st.FramesIn)
		}
	}

	// A hub on m0 and m1 only: m0 has no port for it toward m2, and its
	// broadcast reaches m1.
	m0.sessions["part"].send(broadcast, 4)
	if got := m1.sessions["part"].recv(t); got != 4 {
		t.Fatalf("m1/part got frame %d, want 4", got)
	}
	for _, s := range m0.m.Stats() {
		if s.Hub == "part" && s.Peer == "m2" {
			t.Fatalf("m0 shares part with m2, which does not have it")
		}
	}
	if got := m2.m.HubPeers("part"); len(got) != 0 {
		t.Fatalf("m2 shares part with %v", got)
	}

	// Lab works on its own and stays out of office.
	m2.sessions["lab"].send(broadcast, 5)
	if got := m0.sessions["lab"].recv(t); got != 5 {
		t.Fatalf("m0/lab got frame %d, want 5", got)
	}
	if q := s0.p.Queued(); q != 0 {
		t.Fatalf("lab frame reached office on m0")
	}

	// Detach: m2 leaves office; the others stop sharing it with m2.
	m2.m.DetachHub("office")
	waitShared(t, m0.node, "office", "m1")
	waitShared(t, m1.node, "office", "m0")
}

func TestLinkRestart(t *testing.T) {
	ca := newTestCA(t)
	m0 := newMember(t, "m0", "127.0.0.1:0", ca.conf, 1, "office")
	m1 := newMember(t, "m1", "127.0.0.1:0", ca.conf, 2, "office")
	m2 := newMember(t, "m2", "127.0.0.1:0", ca.conf, 3, "office")
	connect(m0.node, m1.node, m2.node)
	waitShared(t, m0.node, "office", "m1", "m2")
	waitShared(t, m2.node, "office", "m0", "m1")

	// m1 goes away: m0 and m2 keep their link and drop m1's ports.
	m1.stop()
	waitShared(t, m0.node, "office", "m2")
	waitShared(t, m2.node, "office", "m0")

	// m1 comes back on the same address with a fresh hub; m0 redials it and
	// it dials m2 again.
	m1b := newMember(t, "m1", m1.addr, ca.conf, 4, "office")
	connect(m0.node, m1b.node, m2.node)
	waitShared(t, m0.node, "office", "m1", "m2")
	waitShared(t, m1b.node, "office", "m0", "m2")

	m0.sessions["office"].send(broadcast, 7)
	if got := m1b.sessions["office"].recv(t); got != 7 {
		t.Fatalf("restarted m1 got frame %d, want 7", got)
	}
	m1b.sessions["office"].send(m0.sessions["office"].src, 8)
	if got := m0.sessions["office"].recv(t); got != 8 {
		t.Fatalf("m0 got frame %d from the restarted m1, want 8", got)
	}
}

func TestDeadPeerDetected(t *testing.T) {
	// A peer that completes the handshake and then goes silent (no
	// keepalives) is declared dead after DeadTimeout and its ports closed.
	ca := newTestCA(t)
	m0 := newMember(t, "m0", "127.0.0.1:0", ca.conf, 1, "office")
	ln, err := newLoopbackListener()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *tls.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(c, ca.conf)
		if tc.Handshake() != nil {
			return
		}
		if _, err := readHello(tc); err != nil {
			return
		}
		tc.Write(appendHello(nil, "m9"))
		tc.Write(appendAttach(nil, 1, "office"))
		accepted <- tc // then silence
	}()
	m0.m.SetPeers(map[string]string{"m9": ln.Addr().String()})
	waitShared(t, m0.node, "office", "m9")
	tc := <-accepted
	defer tc.Close()
	start := time.Now()
	waitShared(t, m0.node, "office")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("dead peer noticed after %v, DeadTimeout is 1s", d)
	}
}

func TestForeignCARefused(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	n0 := startNode(t, "m0", "127.0.0.1:0", ca.conf)
	stranger := startNode(t, "m1", "127.0.0.1:0", other.conf)

	// "a" is a listed peer that dials m0 (it sorts lower), so only the
	// certificate decides.
	n0.m.SetPeers(map[string]string{"a": "127.0.0.1:1"})
	hello := func(conf *tls.Config) error {
		c, err := tls.Dial("tcp", n0.addr, clientConfig(conf, ALPNLink))
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write(appendHello(nil, "a"))
		_, err = readHello(c)
		return err
	}
	// The mesh refuses a dialler with another CA's certificate: in TLS 1.3
	// the client finishes first, so the refusal shows on its first read.
	if hello(other.conf) == nil {
		t.Fatal("a peer with a foreign CA's certificate completed a Hello")
	}
	if err := hello(ca.conf); err != nil {
		t.Fatalf("the same Hello with the cluster CA's certificate: %v", err)
	}

	// And this member refuses to link to a server with another CA's
	// certificate.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if tc, err := n0.m.dialTLS(ctx, stranger.addr, ALPNLink); err == nil {
		tc.Close()
		t.Fatal("dialled a member with a foreign CA's certificate")
	}

	// The same dial with the right CA works, so the refusals above are about
	// the CA and not a broken setup.
	ok := startNode(t, "m2", "127.0.0.1:0", ca.conf)
	tc, err := n0.m.dialTLS(ctx, ok.addr, ALPNLink)
	if err != nil {
		t.Fatalf("dial with the cluster CA: %v", err)
	}
	tc.Close()
}

func TestWrongDirectionRefused(t *testing.T) {
	// Only the lower name dials, so each pair has one link: m1 dialling m0
	// is refused.
	ca := newTestCA(t)
	n0 := startNode(t, "m0", "127.0.0.1:0", ca.conf)
	c, err := tls.Dial("tcp", n0.addr, clientConfig(ca.conf, ALPNLink))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(appendHello(nil, "m1"))
	if name, err := readHello(c); err == nil {
		t.Fatalf("m0 answered a Hello from m1 (as %q)", name)
	}
}

func TestSetPeersRemovesLinks(t *testing.T) {
	ca := newTestCA(t)
	m0 := newMember(t, "m0", "127.0.0.1:0", ca.conf, 1, "office")
	m1 := newMember(t, "m1", "127.0.0.1:0", ca.conf, 2, "office")
	m2 := newMember(t, "m2", "127.0.0.1:0", ca.conf, 3, "office")
	connect(m0.node, m1.node, m2.node)
	waitShared(t, m0.node, "office", "m1", "m2")
	waitShared(t, m2.node, "office", "m0", "m1")

	// m0 forgets m2: the link it dialled goes, on both sides, and stays gone.
	m0.m.SetPeers(map[string]string{"m0": m0.addr, "m1": m1.addr})
	waitShared(t, m0.node, "office", "m1")
	waitShared(t, m2.node, "office", "m1")

	// m1 forgets m0, whose link it accepted; m0's redials are refused.
	m1.m.SetPeers(map[string]string{"m1": m1.addr, "m2": m2.addr})
	waitShared(t, m1.node, "office", "m2")
	waitShared(t, m0.node, "office")

	// Listing them again brings both links back.
	connect(m0.node, m1.node, m2.node)
	waitShared(t, m0.node, "office", "m1", "m2")
	waitShared(t, m1.node, "office", "m0", "m2")
}

func TestStalledPeerDoesNotBlockControl(t *testing.T) {
	// A peer that keeps sending keepalives but reads nothing blocks its
	// link's writes for the write timeout (10s). Attaching a hub must not
	// wait for that: control messages are queued, not written under the
	// mesh lock.
	ca := newTestCA(t)
	m0 := newMember(t, "m0", "127.0.0.1:0", ca.conf, 1, "office")
	ln, err := newLoopbackListener()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, ca.conf)
		if tc.Handshake() != nil {
			return
		}
		if _, err := readHello(tc); err != nil {
			return
		}
		tc.Write(appendHello(nil, "m9"))
		tc.Write(appendAttach(nil, 1, "office"))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := tc.Write([]byte{msgKeepalive, 0, 0, 0}); err != nil {
					return
				}
			}
		}
	}()
	m0.m.SetPeers(map[string]string{"m9": ln.Addr().String()})
	waitShared(t, m0.node, "office", "m9")

	// Flood until the pump can no longer keep up: the peer port tail-drops
	// only once the pump is stuck in a write.
	s := m0.sessions["office"]
	deadline := time.Now().Add(10 * time.Second)
	for m0.peerPort(t, "office", "m9").Drops.QueueFull == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the link to a peer that reads nothing never backed up")
		}
		batch := make([]*hub.Frame, 128)
		for i := range batch {
			batch[i] = ethFrame(broadcast, s.src, uint32(i), 1400)
		}
		s.p.Forward(batch)
	}

	start := time.Now()
	h := hub.New("lab", hub.Options{})
	defer h.Close()
	m0.m.AttachHub("lab", h)
	m0.m.DetachHub("lab")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("AttachHub/DetachHub took %v behind a stalled peer", d)
	}
}
