// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Hub. Zero fields take their defaults.
type Options struct {
	MACAgeing time.Duration // default 600s
	MaxMACs   int           // default 65536
	QueueLen  int           // per-port egress queue, frames; default 1024
	// QueueBytes bounds the buffer memory a port's egress queue pins (pooled
	// capacity: 2 KiB per MTU frame, 16 KiB per jumbo frame or short
	// super-frame, 64 KiB per long super-frame); default 8 MiB,
	// which QueueLen MTU frames never reach but 127 super-frames do.
	QueueBytes int
	// MaxFrame is the longest ordinary frame, Ethernet header included;
	// default 1518. A super-frame (Frame.Meta with a GSO type) is bounded by
	// gso.MaxSuperFrame instead: its segments are what MaxFrame is about,
	// and the port that segments it checks them.
	MaxFrame int
	Now      func() time.Time // injectable clock; default time.Now
}

const (
	DefaultMACAgeing  = 600 * time.Second
	DefaultMaxMACs    = 65536
	DefaultQueueLen   = 1024
	DefaultQueueBytes = 8 << 20
	DefaultMaxFrame   = 1514 + 4
)

func (o *Options) setDefaults() {
	if o.MACAgeing <= 0 {
		o.MACAgeing = DefaultMACAgeing
	}
	if o.MaxMACs <= 0 {
		o.MaxMACs = DefaultMaxMACs
	}
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Hub is one Virtual Hub: a learning Ethernet switch. Hubs share nothing, so
// traffic never passes between them.
type Hub struct {
	name  string
	opt   Options
	epoch time.Time

	// Derived from opt, in nanoseconds.
	ageing     int64
	refresh    int64 // a known MAC's last-seen time is written at most this often
	sweepEvery int64 // lazy expiry period

	table     atomic.Pointer[macTable]
	ports     atomic.Pointer[[]*Port] // copy-on-write, for flooding
	macs      atomic.Int64            // mirror of table.live, for the lock-free cap check
	lastSweep atomic.Int64            // when aged entries were last purged

	// Written when learning or attaching; kept off the cache line of the
	// fields above, which every Forward reads.
	_       [64]byte
	mu      sync.Mutex // serialises table writes and port set changes
	closed  bool
	retired counterSnapshot // counters of closed ports, so hub totals never go down
}

// New returns an empty hub.
func New(name string, opt Options) *Hub {
	opt.setDefaults()
	h := &Hub{name: name, opt: opt, epoch: opt.Now()}
	h.ageing = int64(opt.MACAgeing)
	h.refresh = min(int64(time.Second), h.ageing/8)
	h.sweepEvery = min(max(h.ageing/4, int64(time.Second)), int64(time.Minute))
	h.table.Store(newMACTable(0))
	h.ports.Store(new([]*Port))
	return h
}

// Name returns the hub's name.
func (h *Hub) Name() string { return h.name }

func (h *Hub) now() int64 { return int64(h.opt.Now().Sub(h.epoch)) }

func (h *Hub) aged(e *macEntry, now int64) bool { return now-e.seen.Load() > h.ageing }

// Attach adds a port. After Close, it returns a port that is already closed.
func (h *Hub) Attach(kind PortKind, label string) *Port {
	p := newPort(h, kind, label)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		p.closed.Store(true)
		p.closeQueue()
		return p
	}
	old := *h.ports.Load()
	ports := make([]*Port, len(old), len(old)+1)
	copy(ports, old)
	ports = append(ports, p)
	h.ports.Store(&ports)
	return p
}

// Ports returns the number of attached ports.
func (h *Hub) Ports() int { return len(*h.ports.Load()) }

// Close detaches every port; their Dequeue returns ErrPortClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	ports := *h.ports.Load()
	h.mu.Unlock()
	for _, p := range ports {
		p.Close()
	}
}

// ExpireMACs removes entries not seen for MACAgeing. Forwarding ignores aged
// entries anyway; purging frees their room under MaxMACs. Forward also calls
// it lazily, at most every min(max(MACAgeing/4, 1s), 1m), and when the table
// is full.
func (h *Hub) ExpireMACs() {
	now := h.now()
	h.mu.Lock()
	h.expireLocked(now)
	h.mu.Unlock()
}

func (h *Hub) expireLocked(now int64) {
	h.lastSweep.Store(now)
	t := h.table.Load()
	for i := range t.slots {
		e := t.slots[i].Load()
		if e == nil || e == tombstone || !h.aged(e, now) {
			continue
		}
		t.slots[i].Store(tombstone)
		t.live--
		delete(e.port.macs, e.key)
	}
	h.settleLocked(t)
}

// settleLocked publishes the live count and rebuilds the table if needed.
func (h *Hub) settleLocked(t *macTable) {
	if t.needsRebuild() {
		t = t.rebuilt()
		h.table.Store(t)
	}
	h.macs.Store(int64(t.live))
}

// maybeSweep runs the lazy expiry on the one caller that wins the race for it.
func (h *Hub) maybeSweep(now int64) {
	last := h.lastSweep.Load()
	if now-last < h.sweepEvery || !h.lastSweep.CompareAndSwap(last, now) {
		return
	}
	h.mu.Lock()
	h.expireLocked(now)
	h.mu.Unlock()
}

// tableFull reports, without locking, whether learning a new MAC would fail:
// the table is at its cap and a purge ran too recently to try another.
func (h *Hub) tableFull(now int64) bool {
	return h.macs.Load() >= int64(h.opt.MaxMACs) && now-h.lastSweep.Load() < h.refresh
}

// learn records that key was seen on p: a new entry, a move from another
// port, or a refresh. It reports false when the table is full.
//
// When the table is full a new MAC is not learned, but its frame is still
// forwarded: frames to it will be flooded, which is slow but correct, while
// dropping would cut off a station because others filled the table (a MAC
// flood from one session must not deny service to the rest of the hub).
func (h *Hub) learn(p *Port, key uint64, now int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p.closed.Load() {
		// Close already removed p's entries; do not add one it would leak.
		return true
	}
	t := h.table.Load()
	if e := t.lookup(key); e != nil {
		if e.port == p {
			e.seen.Store(now)
			return true
		}
		ne := &macEntry{key: key, port: p}
		ne.seen.Store(now)
		t.replace(e, ne)
		delete(e.port.macs, key)
		p.macs[key] = struct{}{}
		return true
	}
	if t.live >= h.opt.MaxMACs {
		if now-h.lastSweep.Load() >= h.refresh {
			h.expireLocked(now)
			t = h.table.Load()
		}
		if t.live >= h.opt.MaxMACs {
			return false
		}
	}
	e := &macEntry{key: key, port: p}
	e.seen.Store(now)
	t.insert(e)
	p.macs[key] = struct{}{}
	h.settleLocked(t)
	return true
}

// forget removes p from the flood list and the table. Caller holds h.mu.
func (h *Hub) forgetLocked(p *Port) {
	old := *h.ports.Load()
	ports := make([]*Port, 0, len(old))
	for _, q := range old {
		if q != p {
			ports = append(ports, q)
		}
	}
	h.ports.Store(&ports)

	t := h.table.Load()
	for k := range p.macs {
		t.remove(k)
	}
	p.macs = nil
	h.settleLocked(t)
}
