// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// Concurrent logins must never overshoot the allocation: with room for 2,
// exactly 2 of 20 simultaneous attempts succeed. Run with -race.
func TestGateConcurrentAcquireNeverOvershoots(t *testing.T) {
	for range 200 {
		g := NewGate(2, 0)
		var ok atomic.Int32
		var start, done sync.WaitGroup
		start.Add(1)
		for range 20 {
			done.Go(func() {
				start.Wait()
				if g.TryAcquire(sessionkind.Client) {
					ok.Add(1)
				}
			})
		}
		start.Done()
		done.Wait()
		if n := ok.Load(); n != 2 {
			t.Fatalf("%d of 20 concurrent acquisitions succeeded with allocation 2", n)
		}
		if c, _ := g.InUse(); c != 2 {
			t.Fatalf("in use %d, want 2", c)
		}
	}
}

// Under heavy churn the number of sessions actually holding a license at one
// moment never exceeds the allocation. The many short acquire/release cycles
// are what expose a check-then-increment race, which a single burst rarely
// hits (with -race this test catches one every run).
func TestGateChurnNeverExceedsAllocation(t *testing.T) {
	g := NewGate(2, 0)
	var over atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100000 {
				if !g.TryAcquire(sessionkind.Client) {
					continue
				}
				if c, _ := g.InUse(); c > 2 {
					over.Store(int32(c))
				}
				runtime.Gosched() // hold the license while others contend
				g.Release(sessionkind.Client)
			}
		})
	}
	wg.Wait()
	if n := over.Load(); n > 0 {
		t.Errorf("%d licenses in use at once with allocation 2", n)
	}
}

// Acquire, Release and SetAllocation racing each other keep the count
// consistent: once everyone has released, nothing is in use.
func TestGateConcurrentChurn(t *testing.T) {
	g := NewGate(5, 5)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			k := sessionkind.Kind(i%2 + 1)
			for j := range 500 {
				if g.TryAcquire(k) {
					if c, b := g.InUse(); c > 7 || b > 7 {
						t.Errorf("in use %d/%d beyond any allocation set", c, b)
					}
					g.Release(k)
				}
				if j%50 == 0 {
					g.SetAllocation(7-i%3, 5+i%3)
				}
			}
		})
	}
	wg.Wait()
	if c, b := g.InUse(); c != 0 || b != 0 {
		t.Errorf("in use %d/%d after every session released", c, b)
	}
}

func TestGate(t *testing.T) {
	g := NewGate(1, 2)

	if !g.TryAcquire(sessionkind.Client) {
		t.Fatal("first client refused with allocation 1")
	}
	err := g.Acquire(sessionkind.Client)
	var ex *ExhaustedError
	if !errors.As(err, &ex) || !errors.Is(err, ErrExhausted) {
		t.Fatalf("second client: err = %v, want an ExhaustedError", err)
	}
	if want := "no client connection license free on this member (allocation 1, in use 1)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	// Kinds are independent.
	first, second, third := g.TryAcquire(sessionkind.Bridge), g.TryAcquire(sessionkind.Bridge), g.TryAcquire(sessionkind.Bridge)
	if !first || !second || third {
		t.Error("bridge allocation 2 not honoured")
	}
	if c, b := g.InUse(); c != 1 || b != 2 {
		t.Errorf("InUse = %d, %d; want 1, 2", c, b)
	}

	// Lowering below use ends nothing but refuses until enough are released.
	g.SetAllocation(1, 1)
	if b := bridgeInUse(g); b != 2 {
		t.Errorf("lowering the allocation changed in use to %d", b)
	}
	g.Release(sessionkind.Bridge)
	if g.TryAcquire(sessionkind.Bridge) {
		t.Error("admitted at allocation 1 with 1 in use")
	}
	g.Release(sessionkind.Bridge)
	if !g.TryAcquire(sessionkind.Bridge) {
		t.Error("refused at allocation 1 with 0 in use")
	}

	// Raising admits at once.
	g.SetAllocation(2, 1)
	if !g.TryAcquire(sessionkind.Client) {
		t.Error("refused after the allocation was raised")
	}

	// A stray Release never creates capacity.
	h := NewGate(1, 1)
	h.Release(sessionkind.Client)
	h.Release(sessionkind.Client)
	if !h.TryAcquire(sessionkind.Client) || h.TryAcquire(sessionkind.Client) {
		t.Error("extra Release calls let more sessions in than allocated")
	}
}

func bridgeInUse(g *Gate) int {
	_, b := g.InUse()
	return b
}

func TestGateUnlimited(t *testing.T) {
	g := NewGate(Unlimited, -7)
	for range 10000 {
		if !g.TryAcquire(sessionkind.Client) || !g.TryAcquire(sessionkind.Bridge) {
			t.Fatal("unlimited gate refused")
		}
	}
	if c, b := g.Allocation(); c != Unlimited || b != Unlimited {
		t.Errorf("Allocation = %d, %d; negative values should read as Unlimited", c, b)
	}
	// Going from unlimited to limited applies to the sessions already in.
	g.SetAllocation(10001, 0)
	if g.TryAcquire(sessionkind.Bridge) {
		t.Error("bridge admitted beyond a new allocation")
	}
	if !g.TryAcquire(sessionkind.Client) || g.TryAcquire(sessionkind.Client) {
		t.Error("client allocation 10001 with 10000 in use should admit exactly one more")
	}
}

func TestZeroGateRefuses(t *testing.T) {
	var g Gate
	if g.TryAcquire(sessionkind.Client) || g.TryAcquire(sessionkind.Bridge) {
		t.Error("a gate that has no allocation yet admitted a session")
	}
}

func TestGateUnknownKind(t *testing.T) {
	g := NewGate(Unlimited, Unlimited)
	if g.TryAcquire(sessionkind.Kind(7)) || g.TryAcquire(sessionkind.Kind(0)) {
		t.Error("unknown kind admitted")
	}
	g.Release(sessionkind.Kind(7)) // must not panic
	if c, b := g.InUse(); c != 0 || b != 0 {
		t.Errorf("InUse = %d, %d after unknown kinds", c, b)
	}
}
