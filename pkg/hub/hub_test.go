// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func threePorts(h *Hub) (a, b, c *Port, all []*Port) {
	a = h.Attach(PortSession, "a")
	b = h.Attach(PortSession, "b")
	c = h.Attach(PortSession, "c")
	return a, b, c, []*Port{a, b, c}
}

func TestUnicastGoesOnlyToLearnedPort(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, b, _, all := threePorts(h)

	send(a, bcast, macA) // learn macA on a
	expectFrames(t, "broadcast from a", all, 0, 1, 1)

	send(b, macA, macB)
	expectFrames(t, "b to learned macA", all, 1, 0, 0)
	send(a, macB, macA)
	expectFrames(t, "a to macB, learned from the unicast above", all, 0, 1, 0)
}

func TestFloodsUnknownBroadcastMulticastToAllButSource(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	_, b, _, all := threePorts(h)
	for _, dst := range []uint64{macC, bcast, mcast} {
		send(b, dst, macB)
		expectFrames(t, "flood", all, 1, 0, 1)
	}
	if s := h.Stats(); s.Flooded != 3 {
		t.Errorf("Flooded = %d, want 3", s.Flooded)
	}
}

func TestNoHairpin(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, _, _, all := threePorts(h)
	send(a, bcast, macA)
	drain(all[1])
	drain(all[2])
	// Another station behind a talks to macA: a switch filters it.
	send(a, macA, macB)
	expectFrames(t, "a to a station behind a", all, 0, 0, 0)
	if s := a.Stats(); s.Filtered != 1 {
		t.Errorf("Filtered = %d, want 1", s.Filtered)
	}
}

func TestMACAgeing(t *testing.T) {
	trackFrames(t)
	clk := newFakeClock()
	h := newTestHub(t, Options{MACAgeing: 600 * time.Second, Now: clk.now})
	a, b, _, all := threePorts(h)

	send(a, bcast, macA)
	drain(b)
	drain(all[2])
	clk.advance(400 * time.Second)
	send(a, bcast, macA) // refresh
	drain(b)
	drain(all[2])
	clk.advance(400 * time.Second) // 800 s after learning, 400 s after refresh
	send(b, macA, macB)
	expectFrames(t, "refreshed entry", all, 1, 0, 0)

	clk.advance(600*time.Second + time.Nanosecond)
	send(c(all), macA, macC)
	expectFrames(t, "aged entry floods", all, 1, 1, 0)
}

func TestExpireMACs(t *testing.T) {
	clk := newFakeClock()
	h := newTestHub(t, Options{MACAgeing: 600 * time.Second, Now: clk.now})
	a, b, _, _ := threePorts(h)
	send(a, bcast, macA)
	clk.advance(300 * time.Second)
	send(b, bcast, macB)
	clk.advance(300*time.Second + time.Nanosecond)
	h.ExpireMACs()
	if got := h.Stats().MACs; got != 1 {
		t.Errorf("%d MACs, want 1: macA aged, macB not", got)
	}
	if na, nb := a.Stats().MACs, b.Stats().MACs; na != 0 || nb != 1 {
		t.Errorf("port MACs a=%d b=%d, want 0 and 1", na, nb)
	}
}

func c(all []*Port) *Port { return all[2] }

func TestMACAgeingPurgedLazilyByForward(t *testing.T) {
	clk := newFakeClock()
	h := newTestHub(t, Options{MACAgeing: 10 * time.Second, Now: clk.now})
	a, b, _, _ := threePorts(h)
	send(a, bcast, macA)
	clk.advance(11 * time.Second)
	send(b, bcast, macB) // no explicit ExpireMACs
	if got := h.Stats().MACs; got != 1 {
		t.Errorf("%d MACs, want 1: Forward should purge aged entries", got)
	}
}

func TestMACTableCap(t *testing.T) {
	trackFrames(t)
	clk := newFakeClock()
	h := newTestHub(t, Options{MaxMACs: 4, MACAgeing: time.Minute, Now: clk.now})
	a, b, _, all := threePorts(h)
	for i := range uint64(4) {
		send(a, bcast, macA+i)
	}
	drain(b)
	drain(all[2])

	const extra = macA + 100
	send(a, bcast, extra)
	expectFrames(t, "frame whose source is not learned is still forwarded", all, 0, 1, 1)
	s := h.Stats()
	if s.MACs != 4 || s.Drops.MACTableFull != 1 {
		t.Fatalf("MACs=%d MACTableFull=%d, want 4 and 1", s.MACs, s.Drops.MACTableFull)
	}
	send(b, extra, macB) // macB not learned either: the table is full
	expectFrames(t, "unlearned MAC is flooded to", all, 1, 0, 1)

	// Room comes back when entries age out, without an explicit purge.
	clk.advance(time.Minute + time.Second)
	send(a, bcast, extra)
	drain(b)
	drain(all[2])
	send(b, extra, macB)
	expectFrames(t, "learned after ageing freed room", all, 1, 0, 0)
}

func TestDefaultMACCap(t *testing.T) {
	h := newTestHub(t, Options{})
	a := h.Attach(PortBridge, "lan")
	batch := make([]*Frame, 0, 256)
	for i := range uint64(DefaultMaxMACs + 1) {
		// Addressed to the sender's own first MAC: filtered, nothing queued.
		batch = append(batch, ethFrame(macA, macA+i, untag, 60, 0))
		if len(batch) == cap(batch) {
			a.Forward(batch)
			batch = batch[:0]
		}
	}
	a.Forward(batch)
	s := h.Stats()
	if s.MACs != DefaultMaxMACs || s.Drops.MACTableFull != 1 {
		t.Errorf("MACs=%d MACTableFull=%d, want %d and 1", s.MACs, s.Drops.MACTableFull, DefaultMaxMACs)
	}
}

func TestVLANsAreSeparateTableKeys(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, b, _, all := threePorts(h)
	a.Forward([]*Frame{ethFrame(bcast, macA, 10, 64, 0)})
	b.Forward([]*Frame{ethFrame(bcast, macA, 20, 64, 0)}) // same MAC, other VLAN
	drain(a)
	drain(b)
	drain(all[2])
	if got := h.Stats().MACs; got != 2 {
		t.Fatalf("%d MACs, want 2 entries for one MAC on two VLANs", got)
	}
	c(all).Forward([]*Frame{ethFrame(macA, macC, 10, 64, 0)})
	expectFrames(t, "macA on VLAN 10", all, 1, 0, 0)
	c(all).Forward([]*Frame{ethFrame(macA, macC, 20, 64, 0)})
	expectFrames(t, "macA on VLAN 20", all, 0, 1, 0)
	send(c(all), macA, macC) // untagged: VLAN 0, unknown there
	expectFrames(t, "macA untagged", all, 1, 1, 0)
}

func TestEgressQueueTailDrop(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{QueueLen: 4})
	a := h.Attach(PortSession, "a")
	b := h.Attach(PortSession, "b")
	send(b, bcast, macB)
	drain(a)
	batch := make([]*Frame, 10)
	for i := range batch {
		batch[i] = ethFrame(macB, macA, untag, 64, byte(i))
	}
	a.Forward(batch) // b is not draining
	gotFrames := drain(b)
	if len(gotFrames) != 4 {
		t.Fatalf("b received %d frames, want 4", len(gotFrames))
	}
	for i, g := range gotFrames {
		if g.tag != byte(i) {
			t.Errorf("frame %d has tag %d: tail drop must keep the oldest, in order", i, g.tag)
		}
	}
	if got := b.Stats().Drops.QueueFull; got != 6 {
		t.Errorf("port QueueFull = %d, want 6", got)
	}
	if got := h.Stats().Drops.QueueFull; got != 6 {
		t.Errorf("hub QueueFull = %d, want 6", got)
	}
}

func TestHubsAreIsolated(t *testing.T) {
	trackFrames(t)
	h1 := newTestHub(t, Options{})
	h2 := New("other", Options{})
	t.Cleanup(h2.Close)
	a1 := h1.Attach(PortSession, "a1")
	b1 := h1.Attach(PortSession, "b1")
	a2 := h2.Attach(PortSession, "a2")
	b2 := h2.Attach(PortSession, "b2")

	send(a1, bcast, macA)
	send(a2, bcast, macB)
	send(b2, macA, macC) // macA lives in h1 only: unknown in h2
	expectFrames(t, "hub 1", []*Port{a1, b1}, 0, 1)
	expectFrames(t, "hub 2", []*Port{a2, b2}, 1, 1)
	if s1, s2 := h1.Stats(), h2.Stats(); s1.MACs != 1 || s2.MACs != 2 {
		t.Errorf("MACs: hub 1 %d, hub 2 %d; want 1 and 2", s1.MACs, s2.MACs)
	}
}

func TestSplitHorizon(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	s := h.Attach(PortSession, "s")
	p1 := h.Attach(PortPeer, "p1")
	p2 := h.Attach(PortPeer, "p2")
	all := []*Port{s, p1, p2}

	send(p1, bcast, macA)
	expectFrames(t, "broadcast from peer", all, 1, 0, 0)
	send(s, bcast, macC)
	expectFrames(t, "broadcast from session", all, 0, 1, 1)
	send(p2, bcast, macB) // macB is behind p2
	expectFrames(t, "broadcast from peer 2", all, 1, 0, 0)

	send(p1, macB, macA)
	expectFrames(t, "peer to MAC behind another peer", all, 0, 0, 0)
	send(p1, macC, macA)
	expectFrames(t, "peer to session", all, 1, 0, 0)
	send(s, macA, macC)
	expectFrames(t, "session to MAC behind peer", all, 0, 1, 0)
	send(p1, macC+1, macA) // unknown unicast from a peer
	expectFrames(t, "unknown unicast from peer", all, 1, 0, 0)
}

func TestMACMovesBetweenPorts(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, b, cc, all := threePorts(h)
	send(a, bcast, macA)
	send(b, bcast, macA) // the station moved to b
	drain(a)
	drain(b)
	drain(cc)
	send(cc, macA, macC)
	expectFrames(t, "after move", all, 0, 1, 0)
	if na, nb := a.Stats().MACs, b.Stats().MACs; na != 0 || nb != 1 {
		t.Errorf("port MACs a=%d b=%d, want 0 and 1", na, nb)
	}
}

func TestMalformedFramesDropped(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, b, _, _ := threePorts(h)
	short := NewFrame()
	short.B = append(short.B, make([]byte, 13)...)
	tagged := ethFrame(bcast, macA, 5, 17, 0) // TPID present, tag cut short
	a.Forward([]*Frame{
		short, tagged,
		ethFrame(bcast, macA, untag, DefaultMaxFrame+1, 0),
		ethFrame(bcast, mcast, untag, 64, 0), // multicast source
		ethFrame(bcast, 0, untag, 64, 0),     // zero source
		ethFrame(bcast, macA, 7, DefaultMaxFrame, 0),
	})
	if n := len(drain(b)); n != 1 {
		t.Errorf("b received %d frames, want only the valid max-size one", n)
	}
	want := Drops{Runt: 2, Oversize: 1, InvalidSource: 2}
	if got := h.Stats().Drops; got != want {
		t.Errorf("drops %+v, want %+v", got, want)
	}
	if got := a.Stats().FramesIn; got != 6 {
		t.Errorf("FramesIn = %d, want 6 (dropped frames were received too)", got)
	}
}

func TestStatsCountFramesAndBytes(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, b, cc, _ := threePorts(h)
	a.Forward([]*Frame{ethFrame(bcast, macA, untag, 100, 0)}) // flooded to b and c
	send(b, macA, macB)                                       // 64 bytes to a
	drain(a)
	drain(b)
	drain(cc)
	if got := a.Stats(); got.FramesIn != 1 || got.BytesIn != 100 || got.FramesOut != 1 || got.BytesOut != 64 || got.MACs != 1 {
		t.Errorf("port a: %+v", got)
	}
	cc.Close() // its counters must stay in the hub totals
	s := h.Stats()
	if s.FramesIn != 2 || s.BytesIn != 164 || s.FramesOut != 3 || s.BytesOut != 264 || s.Ports != 2 {
		t.Errorf("hub: %+v", s)
	}
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"mac_table_full":0`, `"queue_full":0`, `"framesIn":2`} {
		if !strings.Contains(string(j), key) {
			t.Errorf("stats JSON %s lacks %s", j, key)
		}
	}
	pj, _ := json.Marshal(h.Attach(PortPeer, "m2").Stats())
	if !strings.Contains(string(pj), `"kind":"peer"`) {
		t.Errorf("port stats JSON %s lacks the kind name", pj)
	}
}

func TestClosedPortForgetsMACsAndDropsFrames(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, b, cc, _ := threePorts(h)
	send(a, bcast, macA)
	drain(b)
	drain(cc)
	send(b, macA, macB) // queued on a, never read
	a.Close()
	if s := h.Stats(); s.MACs != 1 || s.Ports != 2 {
		t.Errorf("after close: %d MACs, %d ports; want 1 and 2", s.MACs, s.Ports)
	}
	send(b, macA, macB) // macA unknown again: flooded to c only
	expectFrames(t, "after close", []*Port{b, cc}, 0, 1)
	send(a, bcast, macA) // a closed port forwards nothing and learns nothing
	expectFrames(t, "from closed port", []*Port{b, cc}, 0, 0)
	if got := h.Stats().MACs; got != 1 {
		t.Errorf("closed port learned: %d MACs", got)
	}
	if n := liveFrames(); n != 0 {
		t.Errorf("%d frames still referenced after Close released the queue", n)
	}
}

// Forwarding between known MACs, including refreshing the source's
// last-seen time, must not take the hub's write lock: hold it and forward.
func TestKnownMACsForwardWithoutHubLock(t *testing.T) {
	trackFrames(t)
	clk := newFakeClock()
	h := newTestHub(t, Options{Now: clk.now})
	a, b, _, all := threePorts(h)
	send(a, bcast, macA)
	send(b, bcast, macB)
	for _, p := range all {
		drain(p)
	}
	clk.advance(2 * time.Second) // past the refresh interval: a refresh is due

	h.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		send(a, macB, macA)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.mu.Unlock()
		t.Fatal("Forward between known MACs waited for the hub lock")
	}
	h.mu.Unlock()
	expectFrames(t, "a to b", all, 0, 1, 0)

	e := h.table.Load().lookup(macKey(0, macA))
	if got, want := time.Duration(e.seen.Load()), 2*time.Second; got != want {
		t.Errorf("macA last seen at %v, want %v (refreshed without the lock)", got, want)
	}
}
