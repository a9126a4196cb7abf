// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// macTable is an open-addressing hash table from (VLAN, MAC) keys to entries,
// read without locks and written by one writer at a time (Hub.mu).
//
// Why not a map: a sync.RWMutex around a map makes every forwarded frame
// write the lock's reader count, a cache line that bounces between cores; and
// a copy-on-write map costs O(table) per newly learned MAC, quadratic while a
// 65,536-entry table fills. Here a reader does one atomic load per probed slot
// and no writes; a writer stores a pointer. The slot array is replaced (and
// published through Hub.table) only when it must grow, shrink or shed
// tombstones; readers still holding the old array see a consistent, slightly
// stale table whose entries are the same objects, so refreshing a last-seen
// time through it is not lost.
type macTable struct {
	slots []atomic.Pointer[macEntry]
	mask  uint64
	seed  [2]uint64

	// Writer-only bookkeeping.
	live int // entries
	used int // entries + tombstones: the probe chains' load
}

// macEntry is immutable except for seen, so a reader that loaded it may use
// key and port without synchronisation. A MAC that moves to another port gets
// a new entry.
type macEntry struct {
	key  uint64
	port *Port
	seen atomic.Int64 // nanoseconds since the hub's epoch
}

// tombstone marks a deleted slot: lookups continue past it, inserts reuse it.
// Its key has bits set above the 60 used by (VLAN<<48 | MAC), so no lookup
// ever matches it.
var tombstone = &macEntry{key: ^uint64(0)}

const minSlots = 16

func newMACTable(slots int) *macTable {
	n := minSlots
	for n < slots {
		n <<= 1
	}
	return &macTable{
		slots: make([]atomic.Pointer[macEntry], n),
		mask:  uint64(n - 1),
		// A per-table random seed keeps a peer that sends crafted source MACs
		// from piling them into one probe chain.
		seed: [2]uint64{rand.Uint64(), rand.Uint64() | 1},
	}
}

func macKey(vlan uint16, mac uint64) uint64 { return uint64(vlan)<<48 | mac }

func (t *macTable) hash(key uint64) uint64 {
	hi, lo := bits.Mul64(key^t.seed[0], t.seed[1])
	hi, lo = bits.Mul64(hi^lo, 0x9e3779b97f4a7c15)
	return hi ^ lo
}

// lookup returns the entry for key, or nil. Safe for concurrent use with one
// writer.
func (t *macTable) lookup(key uint64) *macEntry {
	for i := t.hash(key); ; i++ {
		e := t.slots[i&t.mask].Load()
		if e == nil || e.key == key {
			return e
		}
	}
}

// insert adds e, whose key must not be present. Writer only.
func (t *macTable) insert(e *macEntry) {
	for i := t.hash(e.key); ; i++ {
		s := &t.slots[i&t.mask]
		switch s.Load() {
		case nil:
			t.used++
		case tombstone:
		default:
			continue
		}
		s.Store(e)
		t.live++
		return
	}
}

// replace swaps old, which must be present, for e with the same key. Writer only.
func (t *macTable) replace(old, e *macEntry) {
	for i := t.hash(old.key); ; i++ {
		s := &t.slots[i&t.mask]
		if s.Load() == old {
			s.Store(e)
			return
		}
	}
}

// remove deletes the entry for key and returns it, or nil. Writer only.
func (t *macTable) remove(key uint64) *macEntry {
	for i := t.hash(key); ; i++ {
		s := &t.slots[i&t.mask]
		e := s.Load()
		if e == nil {
			return nil
		}
		if e.key == key {
			s.Store(tombstone)
			t.live--
			return e
		}
	}
}

// needsRebuild reports whether probe chains are too loaded (growth or
// tombstones) or the table is mostly empty after a purge.
func (t *macTable) needsRebuild() bool {
	n := len(t.slots)
	return t.used*4 >= n*3 || (n > minSlots && t.live*8 < n && t.used > t.live)
}

// rebuilt returns a fresh table holding the same entries at a load of at most
// one half. The receiver stays valid for readers that still hold it.
func (t *macTable) rebuilt() *macTable {
	nt := newMACTable(2*t.live + 2)
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil && e != tombstone {
			nt.insert(e)
		}
	}
	return nt
}
