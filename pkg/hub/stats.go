// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"fmt"
	"sync/atomic"
)

// Drops counts frames the hub did not deliver, by reason.
type Drops struct {
	Runt          uint64 `json:"runt"`           // shorter than an Ethernet header (14, or 18 with an 802.1Q tag)
	Oversize      uint64 `json:"oversize"`       // longer than Options.MaxFrame
	InvalidSource uint64 `json:"invalid_source"` // multicast or all-zero source MAC (never learned, never forwarded)
	QueueFull     uint64 `json:"queue_full"`     // egress queue full (tail drop)
	// MACTableFull counts frames whose new source MAC was not learned because
	// the table was at MaxMACs. Those frames were still forwarded.
	MACTableFull uint64 `json:"mac_table_full"`
	// AccessList counts frames the sending port's access list dropped
	// (Port.SetFilter); the filter counts them per rule too.
	AccessList uint64 `json:"access_list"`
}

func (d *Drops) add(o Drops) {
	d.Runt += o.Runt
	d.Oversize += o.Oversize
	d.InvalidSource += o.InvalidSource
	d.QueueFull += o.QueueFull
	d.MACTableFull += o.MACTableFull
	d.AccessList += o.AccessList
}

// Stats is a snapshot of a hub's counters, including those of ports since
// closed.
type Stats struct {
	Name      string `json:"name"`
	Ports     int    `json:"ports"`
	MACs      int    `json:"macs"` // table entries, including aged ones not yet purged
	FramesIn  uint64 `json:"framesIn"`
	BytesIn   uint64 `json:"bytesIn"`
	FramesOut uint64 `json:"framesOut"` // handed to port readers (a flooded frame counts once per port)
	BytesOut  uint64 `json:"bytesOut"`
	Flooded   uint64 `json:"flooded"` // broadcast, multicast and unknown unicast frames
	// Filtered counts frames deliberately not forwarded: the destination is
	// behind the ingress port, or split horizon stops a peer-to-peer frame.
	Filtered uint64 `json:"filtered"`
	Drops    Drops  `json:"drops"`
}

// PortStats is a snapshot of one port's counters. Drops.QueueFull counts
// frames dropped on this port's egress queue; the other reasons count frames
// received from it.
type PortStats struct {
	Kind      PortKind `json:"kind"`
	Label     string   `json:"label"`
	MACs      int      `json:"macs"` // table entries pointing at this port
	Queued    int      `json:"queued"`
	FramesIn  uint64   `json:"framesIn"`
	BytesIn   uint64   `json:"bytesIn"`
	FramesOut uint64   `json:"framesOut"`
	BytesOut  uint64   `json:"bytesOut"`
	Flooded   uint64   `json:"flooded"`
	Filtered  uint64   `json:"filtered"`
	Drops     Drops    `json:"drops"`
}

// counterSnapshot is the part of PortStats that adds up into Stats.
type counterSnapshot struct {
	framesIn, bytesIn, framesOut, bytesOut, flooded, filtered uint64
	drops                                                     Drops
}

func (c *counterSnapshot) add(o counterSnapshot) {
	c.framesIn += o.framesIn
	c.bytesIn += o.bytesIn
	c.framesOut += o.framesOut
	c.bytesOut += o.bytesOut
	c.flooded += o.flooded
	c.filtered += o.filtered
	c.drops.add(o.drops)
}

// ingressCounters are written by the port's Forward goroutine once per batch;
// egressCounters by producers under the queue lock and by the reader. They sit
// on separate cache lines so the two sides do not slow each other down.
type ingressCounters struct {
	frames, bytes, flooded, filtered      atomic.Uint64
	runt, oversize, invalidSrc, tableFull atomic.Uint64
	accessList                            atomic.Uint64
	_                                     [64]byte
}

type egressCounters struct {
	frames, bytes, queueFull atomic.Uint64
	_                        [64]byte
}

// batchCounters accumulate one Forward call, published with one atomic add each.
type batchCounters struct {
	frames, bytes, flooded, filtered      uint64
	runt, oversize, invalidSrc, tableFull uint64
	accessList                            uint64
}

// publishIn adds a batch's frames and bytes, before it is forwarded.
func (c *ingressCounters) publishIn(b *batchCounters) {
	c.frames.Add(b.frames)
	c.bytes.Add(b.bytes)
}

// publish adds what became of a batch's frames, once it is forwarded.
func (c *ingressCounters) publish(b *batchCounters) {
	addNonZero(&c.flooded, b.flooded)
	addNonZero(&c.filtered, b.filtered)
	addNonZero(&c.runt, b.runt)
	addNonZero(&c.oversize, b.oversize)
	addNonZero(&c.invalidSrc, b.invalidSrc)
	addNonZero(&c.tableFull, b.tableFull)
	addNonZero(&c.accessList, b.accessList)
}

func addNonZero(c *atomic.Uint64, n uint64) {
	if n != 0 {
		c.Add(n)
	}
}

func (p *Port) snapshot() counterSnapshot {
	return counterSnapshot{
		framesIn:  p.in.frames.Load(),
		bytesIn:   p.in.bytes.Load(),
		framesOut: p.out.frames.Load(),
		bytesOut:  p.out.bytes.Load(),
		flooded:   p.in.flooded.Load(),
		filtered:  p.in.filtered.Load(),
		drops: Drops{
			Runt:          p.in.runt.Load(),
			Oversize:      p.in.oversize.Load(),
			InvalidSource: p.in.invalidSrc.Load(),
			MACTableFull:  p.in.tableFull.Load(),
			AccessList:    p.in.accessList.Load(),
			QueueFull:     p.out.queueFull.Load(),
		},
	}
}

// Stats returns a snapshot of the port's counters.
func (p *Port) Stats() PortStats {
	c := p.snapshot()
	p.hub.mu.Lock()
	macs := len(p.macs)
	p.hub.mu.Unlock()
	return PortStats{
		Kind: p.kind, Label: p.label, MACs: macs, Queued: p.Queued(),
		FramesIn: c.framesIn, BytesIn: c.bytesIn, FramesOut: c.framesOut, BytesOut: c.bytesOut,
		Flooded: c.flooded, Filtered: c.filtered, Drops: c.drops,
	}
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	total := h.retired
	ports := *h.ports.Load()
	for _, p := range ports {
		total.add(p.snapshot())
	}
	h.mu.Unlock()
	return Stats{
		Name: h.name, Ports: len(ports), MACs: int(h.macs.Load()),
		FramesIn: total.framesIn, BytesIn: total.bytesIn, FramesOut: total.framesOut, BytesOut: total.bytesOut,
		Flooded: total.flooded, Filtered: total.filtered, Drops: total.drops,
	}
}

var kindNames = [...]string{PortSession: "session", PortPeer: "peer", PortBridge: "bridge"}

func (k PortKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("PortKind(%d)", uint8(k))
}

// MarshalText makes PortKind read as "session", "peer" or "bridge" in JSON.
func (k PortKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText accepts the names MarshalText writes.
func (k *PortKind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if n == string(b) {
			*k = PortKind(i)
			return nil
		}
	}
	return fmt.Errorf("hub: unknown port kind %q", b)
}
