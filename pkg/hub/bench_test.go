// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

const benchBatch = 64

// lane is one ingress port and the egress ports its traffic goes to, driven
// by one benchmark goroutine: it forwards a batch, then drains and releases
// what arrived, as a session writer would.
type lane struct {
	in    *Port
	out   []*Port
	dsts  []uint64
	next  int
	tmpl  []byte
	batch []*Frame
	buf   []*Frame
}

// newLanes builds a hub with one lane per GOMAXPROCS. Each lane addresses
// macs destination MACs spread round-robin over up to 8 egress ports, so
// consecutive frames go to different ports (no help from per-port batching).
func newLanes(b *testing.B, macs int) []*lane {
	n := runtime.GOMAXPROCS(0)
	h := New("bench", Options{MaxMACs: n*(macs+1) + 16})
	b.Cleanup(h.Close)
	lanes := make([]*lane, n)
	for li := range lanes {
		l := &lane{
			in:    h.Attach(PortSession, "in"),
			tmpl:  make([]byte, 64),
			batch: make([]*Frame, benchBatch),
			buf:   make([]*Frame, benchBatch),
		}
		src := uint64(0x020000000000) | uint64(li)<<32
		putMAC(l.tmpl[6:], src)
		l.tmpl[12], l.tmpl[13] = 0x08, 0x00
		for range min(macs, 8) {
			l.out = append(l.out, h.Attach(PortSession, "out"))
		}
		// Teach the hub where each destination lives, and the source.
		for m := range macs {
			mac := src + 0x1000 + uint64(m)
			l.dsts = append(l.dsts, mac)
			l.out[m%len(l.out)].Forward([]*Frame{ethFrame(bcast, mac, untag, 64, 0)})
		}
		l.in.Forward([]*Frame{ethFrame(bcast, src, untag, 64, 0)})
		lanes[li] = l
	}
	for _, l := range lanes {
		l.drain()
		for {
			if k := l.in.TryDequeue(l.buf); k > 0 {
				releaseAll(l.buf[:k])
				continue
			}
			break
		}
	}
	if got := h.Stats().MACs; got != n*(macs+1) {
		b.Fatalf("learned %d MACs, want %d", got, n*(macs+1))
	}
	return lanes
}

func (l *lane) forward(k int) {
	for i := range k {
		f := NewFrameSize(len(l.tmpl))
		f.B = append(f.B[:0], l.tmpl...)
		putMAC(f.B, l.dsts[l.next])
		if l.next++; l.next == len(l.dsts) {
			l.next = 0
		}
		l.batch[i] = f
	}
	l.in.Forward(l.batch[:k])
	l.drain()
}

func (l *lane) drain() {
	for _, o := range l.out {
		for {
			k := o.TryDequeue(l.buf)
			releaseAll(l.buf[:k])
			if k < len(l.buf) {
				break
			}
		}
	}
}

// reportRate reports frames/s of wall time and CPU nanoseconds per frame
// (all cores together) since cpu0 was taken.
func reportRate(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	if cpu, ok := testutil.ProcessCPU(); ok && b.N > 0 {
		b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/frame")
	}
}

// runLanes runs b.N frames over the lanes, one goroutine per lane, and
// reports the switch's throughput.
func runLanes(b *testing.B, lanes []*lane) {
	var next atomic.Int32
	b.ReportAllocs()
	cpu0, _ := testutil.ProcessCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := lanes[int(next.Add(1)-1)%len(lanes)]
		k := 0
		for pb.Next() {
			if k++; k == benchBatch {
				l.forward(k)
				k = 0
			}
		}
		if k > 0 {
			l.forward(k)
		}
	})
	reportRate(b, cpu0)
}

// BenchmarkForward measures unicast switching of 64-byte frames to learned
// MACs: pool get, header copy, two table lookups, queueing, dequeue, release.
func BenchmarkForward(b *testing.B) {
	for _, macs := range []int{1, 16, 65536} {
		b.Run(fmt.Sprintf("macs=%d", macs), func(b *testing.B) {
			runLanes(b, newLanes(b, macs))
		})
	}
}

// BenchmarkFlood measures one port broadcasting to 16 others, on one
// goroutine whatever -cpu says; frames/s counts ingress frames (each is
// delivered 16 times, sharing one buffer).
func BenchmarkFlood(b *testing.B) {
	h := New("bench", Options{})
	b.Cleanup(h.Close)
	l := &lane{
		in:    h.Attach(PortSession, "in"),
		dsts:  []uint64{bcast},
		tmpl:  make([]byte, 64),
		batch: make([]*Frame, benchBatch),
		buf:   make([]*Frame, benchBatch),
	}
	putMAC(l.tmpl[6:], macA)
	for range 16 {
		l.out = append(l.out, h.Attach(PortSession, "out"))
	}
	b.ReportAllocs()
	cpu0, _ := testutil.ProcessCPU()
	b.ResetTimer()
	for n := b.N; n > 0; n -= benchBatch {
		l.forward(min(n, benchBatch))
	}
	reportRate(b, cpu0)
}

// BenchmarkTableLookup compares the lock-free table with the obvious
// alternative, a map behind a sync.RWMutex, for 16 keys read from every core.
func BenchmarkTableLookup(b *testing.B) {
	const keys = 16
	b.Run("lockfree", func(b *testing.B) {
		var cur atomic.Pointer[macTable]
		t := newMACTable(2 * keys)
		for i := range uint64(keys) {
			t.insert(entry(macA + i))
		}
		cur.Store(t)
		b.RunParallel(func(pb *testing.PB) {
			i := uint64(0)
			for pb.Next() {
				if cur.Load().lookup(macA+i%keys) == nil {
					b.Error("miss")
				}
				i++
			}
		})
	})
	b.Run("rwmutex-map", func(b *testing.B) {
		var mu sync.RWMutex
		m := make(map[uint64]*macEntry)
		for i := range uint64(keys) {
			m[macA+i] = entry(macA + i)
		}
		b.RunParallel(func(pb *testing.PB) {
			i := uint64(0)
			for pb.Next() {
				mu.RLock()
				e := m[macA+i%keys]
				mu.RUnlock()
				if e == nil {
					b.Error("miss")
				}
				i++
			}
		})
	})
}
