// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package auth

import (
	"context"
	"errors"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockingVerifier is a Verifier whose verifications wait for the test.
type blockingVerifier struct {
	*Verifier
	running, most atomic.Int32
	entered       chan struct{}
	finish        chan struct{}
}

func newBlockingVerifier(o VerifierOptions) *blockingVerifier {
	b := &blockingVerifier{Verifier: NewVerifier(o), entered: make(chan struct{}, 100), finish: make(chan struct{})}
	b.verify = func(string, string) (bool, error) {
		n := b.running.Add(1)
		for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
		}
		b.entered <- struct{}{}
		<-b.finish
		b.running.Add(-1)
		return false, nil
	}
	return b
}

func (b *blockingVerifier) activeCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active
}

// A storm of logins must not take every core from forwarding: verifications
// beyond the pool wait, however many arrive.
func TestVerifierRunsNoMoreThanItsWorkers(t *testing.T) {
	if w := DefaultWorkers(); runtime.GOMAXPROCS(0) >= 2 && w >= runtime.GOMAXPROCS(0) {
		t.Errorf("DefaultWorkers %d leaves no core of %d to forwarding", w, runtime.GOMAXPROCS(0))
	}
	v := newBlockingVerifier(VerifierOptions{Workers: 2, IdleRelease: -1})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { _, _ = v.Verify(context.Background(), "", "") })
	}
	<-v.entered
	<-v.entered
	for v.activeCalls() < 6 {
		runtime.Gosched() // all six have called Verify; four must be waiting
	}
	if n := v.running.Load(); n != 2 {
		t.Fatalf("%d verifications running with 2 workers", n)
	}
	close(v.finish)
	wg.Wait()
	if m := v.most.Load(); m != 2 {
		t.Errorf("at most %d verifications ran at once, want 2", m)
	}
}

// A login that waits too long for a worker is refused as busy rather than
// piling up behind the storm.
func TestVerifierWaitEndsWithTheLoginsContext(t *testing.T) {
	v := newBlockingVerifier(VerifierOptions{Workers: 1, IdleRelease: -1})
	go func() { _, _ = v.Verify(context.Background(), "", "") }()
	<-v.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, "", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify while the only worker is busy and the context is over: %v, want context.Canceled", err)
	}
	close(v.finish)
}

// fakeTimers records the release timers a Verifier sets.
type fakeTimers struct {
	mu    sync.Mutex
	waits []time.Duration
	fires []func()
}

func (f *fakeTimers) after(d time.Duration, fn func()) func() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	f.fires = append(f.fires, fn)
	return func() bool { return true }
}

func (f *fakeTimers) last() (time.Duration, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waits[len(f.waits)-1], f.fires[len(f.fires)-1]
}

func TestVerifierReturnsMemoryOnceIdleAfterABurst(t *testing.T) {
	v := NewVerifier(VerifierOptions{Workers: 1, IdleRelease: time.Second, MinReleaseGap: 10 * time.Second})
	v.verify = func(string, string) (bool, error) { return false, nil }
	var timers fakeTimers
	v.after = timers.after
	now := time.Unix(1000, 0)
	v.now = func() time.Time { return now }
	released := 0
	v.release = func() { released++ }
	ctx := context.Background()

	// A burst: each end sets a release timer for the idle time.
	for range 3 {
		_, _ = v.Verify(ctx, "", "")
	}
	stale := timers.fires[0]
	wait, fire := timers.last()
	if wait != time.Second {
		t.Errorf("release set %v after the burst, want the 1s idle time", wait)
	}
	stale() // superseded by later verifications
	if released != 0 {
		t.Fatalf("memory returned by a timer set before the burst ended")
	}
	fire()
	if released != 1 {
		t.Fatalf("memory returned %d times once idle after the burst, want once", released)
	}
	fire()
	if released != 1 {
		t.Errorf("memory returned again with no verification since")
	}

	// A verification soon after: the next return waits out the gap.
	now = now.Add(2 * time.Second)
	_, _ = v.Verify(ctx, "", "")
	if wait, _ := timers.last(); wait != 8*time.Second {
		t.Errorf("release set %v after the last return 2s ago, want the rest of the 10s gap (8s)", wait)
	}

	// Not while a verification runs.
	b := newBlockingVerifier(VerifierOptions{Workers: 2, IdleRelease: time.Second})
	b.after = timers.after
	b.release = func() { released++ }
	go func() { _, _ = b.Verify(ctx, "", "") }()
	<-b.entered
	go func() { _, _ = b.Verify(ctx, "", "") }()
	<-b.entered
	b.finish <- struct{}{} // one ends, one still runs: no timer yet
	for b.activeCalls() != 1 {
		runtime.Gosched()
	}
	n := len(timers.waits)
	close(b.finish)
	for b.activeCalls() != 0 {
		runtime.Gosched()
	}
	if len(timers.waits) != n+1 {
		t.Errorf("%d release timers set as two overlapping verifications ended, want 1 (when the last ended)", len(timers.waits)-n)
	}
}

// After a burst at the default cost, the heap's freed pages go back to the OS
// instead of staying in the process for minutes.
func TestVerifierBurstMemoryComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("argon2id at the default cost")
	}
	phc, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierOptions{Workers: 2, IdleRelease: 10 * time.Millisecond})
	released := make(chan struct{})
	free := v.release
	v.release = func() { free(); close(released) }
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _ = v.Verify(context.Background(), phc, "wrong") })
	}
	wg.Wait()
	select {
	case <-released:
	case <-time.After(30 * time.Second):
		t.Fatal("memory not returned within 30s of the burst")
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	// Free heap still held from the OS; the burst freed 8 × 19 MiB.
	if held := s[0].Value.Uint64(); held > 8<<20 {
		t.Errorf("%d MiB of free heap still held after the burst", held>>20)
	}
}
