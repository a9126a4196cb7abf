// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"sync"
	"sync/atomic"
	"testing"
)

func entry(key uint64) *macEntry { return &macEntry{key: key} }

func TestMACTableInsertLookupRemove(t *testing.T) {
	tab := newMACTable(0)
	const n = 5000
	for i := range uint64(n) {
		tab.insert(entry(macKey(uint16(i%7), macA+i)))
		if tab.needsRebuild() {
			tab = tab.rebuilt()
		}
	}
	for i := range uint64(n) {
		if i%2 == 0 {
			if tab.remove(macKey(uint16(i%7), macA+i)) == nil {
				t.Fatalf("remove %d: not found", i)
			}
		}
	}
	for i := range uint64(n) {
		e := tab.lookup(macKey(uint16(i%7), macA+i))
		if (e != nil) != (i%2 == 1) {
			t.Fatalf("key %d: found=%v", i, e != nil)
		}
		if tab.lookup(macKey(uint16(i%7+1), macA+i)) != nil {
			t.Fatalf("key %d found under the wrong VLAN", i)
		}
	}
	if tab.live != n/2 {
		t.Errorf("live = %d, want %d", tab.live, n/2)
	}
	if tab.remove(macKey(0, macA)) != nil {
		t.Error("removed a key twice")
	}
}

// Insert/remove churn leaves tombstones; the rebuild policy must keep the
// table small and every probe chain terminating.
func TestMACTableChurnStaysSmall(t *testing.T) {
	tab := newMACTable(0)
	for i := range uint64(100_000) {
		tab.insert(entry(i))
		tab.remove(i)
		if tab.needsRebuild() {
			tab = tab.rebuilt()
		}
	}
	if len(tab.slots) > minSlots || tab.lookup(1<<40) != nil {
		t.Errorf("after churn: %d slots, want %d", len(tab.slots), minSlots)
	}
}

// Readers see every key that was present before they started, while a writer
// inserts, moves and rebuilds concurrently (run with -race).
func TestMACTableConcurrentReaders(t *testing.T) {
	var cur atomic.Pointer[macTable]
	const stable = 256
	tab := newMACTable(2 * stable)
	for i := range uint64(stable) {
		tab.insert(entry(i))
	}
	cur.Store(tab)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tb := cur.Load()
				for i := range uint64(stable) {
					if e := tb.lookup(i); e == nil || e.key != i {
						t.Errorf("stable key %d missing", i)
						return
					}
				}
			}
		})
	}
	for i := range uint64(20_000) {
		k := stable + i
		tab.insert(entry(k))
		tab.replace(tab.lookup(i%stable), entry(i%stable)) // a move
		if i >= 100 {
			tab.remove(k - 100)
		}
		if tab.needsRebuild() {
			tab = tab.rebuilt()
			cur.Store(tab)
		}
	}
	close(stop)
	wg.Wait()
}
