// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

// Concurrent Forward, Dequeue, Attach, Close, ExpireMACs and Stats: run with
// -race. Along the way it checks that no frame goes back to its sender or
// from a peer to a peer, and at the end that every frame was released.
func TestConcurrentUse(t *testing.T) {
	trackFrames(t)
	h := New("race", Options{QueueLen: 32})
	kinds := []PortKind{PortSession, PortSession, PortPeer, PortPeer, PortBridge}
	ports := make([]*Port, len(kinds))
	for i, k := range kinds {
		ports[i] = h.Attach(k, "fixed")
	}
	const ephemeralTag = 0xee
	kindOf := func(tag byte) PortKind {
		if tag == ephemeralTag {
			return PortSession
		}
		return kinds[tag]
	}
	dsts := []uint64{bcast, mcast, macA, macA + 1, macA + 2, macA + 3, macA + 4, macA + 99}

	var readers, writers sync.WaitGroup
	for i, p := range ports {
		readers.Go(func() {
			buf := make([]*Frame, 8)
			for {
				n, err := p.Dequeue(context.Background(), buf)
				if errors.Is(err, ErrPortClosed) {
					return
				}
				for _, f := range buf[:n] {
					tag := f.B[14]
					if int(tag) == i {
						t.Errorf("port %d received its own frame", i)
					}
					if p.Kind() == PortPeer && kindOf(tag) == PortPeer {
						t.Errorf("peer port %d received a frame from peer %d", i, tag)
					}
					f.Release()
				}
			}
		})
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			batch := make([]*Frame, 8)
			for range 2000 {
				for j := range batch {
					batch[j] = ethFrame(dsts[rng.IntN(len(dsts))], macA+uint64(i), untag, 60, byte(i))
				}
				p.Forward(batch)
			}
		})
	}
	writers.Go(func() { // attach/close churn, also mid-flood
		buf := make([]*Frame, 8)
		for i := range 500 {
			p := h.Attach(PortSession, "ephemeral")
			p.Forward([]*Frame{ethFrame(bcast, macA+1000+uint64(i%50), untag, 60, ephemeralTag)})
			for n := p.TryDequeue(buf); n > 0; n = p.TryDequeue(buf) {
				releaseAll(buf[:n])
			}
			p.Close()
		}
	})
	writers.Go(func() {
		for range 500 {
			h.ExpireMACs()
			_ = h.Stats()
			_ = ports[0].Stats()
		}
	})
	writers.Wait()
	h.Close()
	readers.Wait()
	if s := h.Stats(); s.Ports != 0 || s.MACs != 0 || s.FramesIn != 5*2000*8+500 {
		t.Errorf("after Close: %+v", s)
	}
}
