// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// PortKind says what is behind a port; it decides split horizon.
type PortKind uint8

const (
	PortSession PortKind = iota // a VPN client session
	PortPeer                    // another member's instance of the same static hub
	PortBridge                  // a bridge session or local bridge
)

// ErrPortClosed is returned by Dequeue once the port or its hub is closed.
var ErrPortClosed = errors.New("hub: port closed")

// Port is one attachment to a hub. Forward is called by one goroutine (the
// session reader); Dequeue/TryDequeue by one goroutine (the session writer).
type Port struct {
	// Read by every Forward that sends here, so kept apart from fields
	// that this port's own goroutines write.
	hub    *Hub
	kind   PortKind
	label  string
	closed atomic.Bool
	macs   map[uint64]struct{} // keys whose entry points here; guarded by hub.mu
	_      [64]byte

	// Ingress side, owned by the Forward goroutine.
	filter atomic.Pointer[filterRef] // the session's access list; nil: none
	pend   []pending
	run    []*Frame
	in     ingressCounters

	// Egress side: a bounded ring written by any port's Forward.
	qmu     sync.Mutex
	ring    []*Frame
	head    int
	n       int
	qbytes  int // pooled capacity of the queued frames, against QueueBytes
	qclosed bool
	notify  chan struct{} // one token: "the queue became non-empty"
	done    chan struct{} // closed with the port
	out     egressCounters
}

func newPort(h *Hub, kind PortKind, label string) *Port {
	return &Port{
		hub: h, kind: kind, label: label,
		macs:   make(map[uint64]struct{}),
		ring:   make([]*Frame, h.opt.QueueLen),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// Filter is an access list at a port's ingress: Match reports whether a frame
// is dropped (and counts the drop against the rule that decided). It is an
// interface so the switch needs no knowledge of rules (pkg/acl implements it).
type Filter interface {
	Match(frame []byte) (drop bool, rule int)
}

type filterRef struct{ f Filter }

// SetFilter installs the access list applied to frames this port sends into
// the hub, replacing any earlier one; nil removes it. It may be called while
// the port forwards: the next batch uses the new filter.
func (p *Port) SetFilter(f Filter) {
	if f == nil {
		p.filter.Store(nil)
		return
	}
	p.filter.Store(&filterRef{f})
}

// Kind returns the port's kind.
func (p *Port) Kind() PortKind { return p.kind }

// Label returns the label given to Attach.
func (p *Port) Label() string { return p.label }

// Queued returns the number of frames waiting in the egress queue.
func (p *Port) Queued() int {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return p.n
}

// push appends frames to the egress queue, taking one reference of each;
// frames that do not fit are dropped (tail drop) and released.
func (p *Port) push(frames []*Frame) {
	p.qmu.Lock()
	if p.qclosed {
		p.qmu.Unlock()
		releaseAll(frames)
		return
	}
	wasEmpty := p.n == 0
	free := len(p.ring) - p.n
	k := 0
	tail := p.head + p.n
	budget := p.hub.opt.QueueBytes - p.qbytes
	for _, f := range frames[:min(free, len(frames))] {
		// The budget counts pinned buffer capacity, so a queue of
		// super-frames cannot hold QueueLen × 64 KiB; an empty queue takes
		// one frame whatever its size.
		if c := cap(f.buf); c > budget && p.n+k > 0 {
			break
		} else {
			budget -= c
		}
		if tail >= len(p.ring) {
			tail -= len(p.ring)
		}
		p.ring[tail] = f
		tail++
		k++
	}
	p.n += k
	p.qbytes = p.hub.opt.QueueBytes - budget
	p.qmu.Unlock()
	if dropped := frames[k:]; len(dropped) > 0 {
		p.out.queueFull.Add(uint64(len(dropped)))
		releaseAll(dropped)
	}
	if wasEmpty && k > 0 {
		select {
		case p.notify <- struct{}{}:
		default:
		}
	}
}

// TryDequeue moves up to len(dst) queued frames into dst without blocking and
// returns how many. The caller owns them and must Release each.
func (p *Port) TryDequeue(dst []*Frame) int {
	p.qmu.Lock()
	k := min(p.n, len(dst))
	for i := range k {
		dst[i] = p.ring[p.head]
		p.qbytes -= cap(dst[i].buf)
		p.ring[p.head] = nil
		p.head++
		if p.head == len(p.ring) {
			p.head = 0
		}
	}
	p.n -= k
	p.qmu.Unlock()
	if k > 0 {
		var bytes uint64
		for _, f := range dst[:k] {
			bytes += uint64(len(f.B))
		}
		p.out.frames.Add(uint64(k))
		p.out.bytes.Add(bytes)
	}
	return k
}

// Dequeue blocks until at least one frame is queued, ctx is done or the port
// is closed, then moves up to len(dst) frames into dst without blocking
// further. The caller owns the returned frames and must Release each.
func (p *Port) Dequeue(ctx context.Context, dst []*Frame) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	for {
		if n := p.TryDequeue(dst); n > 0 {
			return n, nil
		}
		select {
		case <-p.done:
			return 0, ErrPortClosed
		default:
		}
		select {
		case <-p.notify:
		case <-p.done:
			return 0, ErrPortClosed
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Close detaches the port: its MAC entries are removed, queued frames
// released, Dequeue woken with ErrPortClosed and later frames to it dropped.
// Closing twice is harmless.
func (p *Port) Close() {
	h := p.hub
	h.mu.Lock()
	if p.closed.Load() {
		h.mu.Unlock()
		return
	}
	p.closed.Store(true)
	h.forgetLocked(p)
	p.closeQueue()
	// Folding the counters under the same lock that removed the port keeps
	// Hub.Stats from ever seeing the port in neither place. Only a Forward or
	// Dequeue racing this Close can still add to them; those few frames go
	// uncounted in the hub totals.
	h.retired.add(p.snapshot())
	h.mu.Unlock()
}

func (p *Port) closeQueue() {
	p.qmu.Lock()
	if p.qclosed {
		p.qmu.Unlock()
		return
	}
	p.qclosed = true
	var queued []*Frame
	for p.n > 0 {
		queued = append(queued, p.ring[p.head])
		p.ring[p.head] = nil
		p.head = (p.head + 1) % len(p.ring)
		p.n--
	}
	p.qbytes = 0
	p.qmu.Unlock()
	releaseAll(queued)
	close(p.done)
}
