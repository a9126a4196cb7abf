// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"encoding/binary"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

const (
	ethHeader    = 14
	vlanHeader   = 18
	tpid8021Q    = 0x8100
	vlanIDMask   = 0x0fff
	multicastBit = 1 // I/G bit of the first address octet; broadcast has it too
)

func mac48(b []byte) uint64 {
	_ = b[5]
	return uint64(binary.BigEndian.Uint32(b))<<16 | uint64(binary.BigEndian.Uint16(b[4:]))
}

// Forward switches frames that arrived on p, taking ownership of one
// reference of each: learned unicast goes to its port, broadcast, multicast
// and unknown unicast are flooded to every other port, frames for a MAC
// behind p itself are filtered, and a frame from a peer port never goes to
// another peer port (split horizon over the member mesh). Called by one
// goroutine per port.
//
// Per frame it does two lock-free table lookups and no allocation. A batch's
// unicast frames for one port are queued under one lock acquisition.
func (p *Port) Forward(frames []*Frame) {
	if len(frames) == 0 {
		return
	}
	h := p.hub
	if p.closed.Load() {
		releaseAll(frames)
		return
	}
	now := h.now()
	if now-h.lastSweep.Load() >= h.sweepEvery {
		h.maybeSweep(now)
	}
	t := h.table.Load()
	maxFrame := h.opt.MaxFrame
	// Loaded once per batch: with no access list the per-frame cost is one
	// nil check.
	var filter Filter
	if ref := p.filter.Load(); ref != nil {
		filter = ref.f
	}
	var c batchCounters
	// The batch is counted in before any of its frames is queued, so whoever
	// has received one of them (a session's peer, a test) finds it in
	// FramesIn; the drop counters follow at the end.
	for _, f := range frames {
		c.bytes += uint64(len(f.B))
	}
	c.frames = uint64(len(frames))
	p.in.publishIn(&c)

	for _, f := range frames {
		b := f.B
		if len(b) < ethHeader {
			c.runt++
			f.Release()
			continue
		}
		if len(b) > maxFrame && (len(b) > gso.MaxSuperFrame || !f.Meta.Segmented()) {
			c.oversize++
			f.Release()
			continue
		}
		var vlan uint16
		if binary.BigEndian.Uint16(b[12:]) == tpid8021Q {
			if len(b) < vlanHeader {
				c.runt++
				f.Release()
				continue
			}
			vlan = binary.BigEndian.Uint16(b[14:]) & vlanIDMask
		}
		src := mac48(b[6:])
		if b[6]&multicastBit != 0 || src == 0 {
			c.invalidSrc++
			f.Release()
			continue
		}
		// Before learning: a dropped frame must not teach the table where
		// its source is.
		if filter != nil {
			if drop, _ := filter.Match(b); drop {
				c.accessList++
				f.Release()
				continue
			}
		}

		// Learn. The common case, a known MAC on its own port, reads only;
		// its last-seen time is written at most once per refresh interval so
		// the entry's cache line is not dirtied by every frame.
		skey := macKey(vlan, src)
		if e := t.lookup(skey); e != nil && e.port == p {
			if now-e.seen.Load() >= h.refresh {
				e.seen.Store(now)
			}
		} else if e == nil && h.tableFull(now) {
			c.tableFull++
		} else {
			if !h.learn(p, skey, now) {
				c.tableFull++
			}
			t = h.table.Load()
		}

		var dst *Port
		if b[0]&multicastBit == 0 {
			if e := t.lookup(macKey(vlan, mac48(b))); e != nil && !h.aged(e, now) {
				dst = e.port
			}
		}
		if dst == nil {
			// A flooded frame must not overtake unicast frames held back
			// for the same queues.
			p.flushPending()
			c.flooded++
			p.flood(f)
			continue
		}
		if dst == p || (p.kind == PortPeer && dst.kind == PortPeer) {
			c.filtered++
			f.Release()
			continue
		}
		p.pend = append(p.pend, pending{dst, f})
	}
	p.flushPending()
	p.in.publish(&c)
}

// pending is a unicast frame held back so that a batch's frames for one port
// are queued under one lock.
type pending struct {
	dst *Port
	f   *Frame
}

// flushPending queues the held-back frames, grouped by destination, each
// group in arrival order. The scan is quadratic in the number of distinct
// destinations, which is bounded by the batch size; with many destinations
// each gets about one frame and one lock, as without grouping.
func (p *Port) flushPending() {
	pend := p.pend
	for i := range pend {
		d := pend[i].dst
		if d == nil {
			continue
		}
		run := p.run[:0]
		for j := i; j < len(pend); j++ {
			if pend[j].dst == d {
				run = append(run, pend[j].f)
				pend[j].dst = nil
			}
		}
		d.push(run)
		clear(run)
		p.run = run[:0]
	}
	clear(pend)
	p.pend = pend[:0]
}

// flood queues f on every port except p, and except other peer ports when p
// is a peer. The one reference Forward owns becomes one of the queues'.
func (p *Port) flood(f *Frame) {
	ports := *p.hub.ports.Load()
	peerIn := p.kind == PortPeer
	n := 0
	for _, q := range ports {
		if q != p && !(peerIn && q.kind == PortPeer) {
			n++
		}
	}
	if n == 0 {
		f.Release()
		return
	}
	f.refs.Add(int32(n - 1))
	one := [1]*Frame{f}
	for _, q := range ports {
		if q != p && !(peerIn && q.kind == PortPeer) {
			q.push(one[:])
		}
	}
}
