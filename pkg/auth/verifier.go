// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package auth

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// Verifier runs password verifications on a bounded pool and hands their
// memory back to the operating system when they stop.
//
// One argon2id verification at DefaultParams holds a core for tens of
// milliseconds and allocates 19 MiB. Unbounded, or bounded at GOMAXPROCS, a
// storm of wrong-password logins takes every core from the sessions that
// forward frames (whose latency went from 0.7 ms to 20–40 ms on two cores) and
// leaves the heap, and the GC's target with it, several times its size for
// minutes after the storm. So verifications get fewer workers than there are
// cores, and once they have been idle for a moment the freed memory is
// returned at once instead of by the background scavenger.
type Verifier struct {
	slots   chan struct{}
	verify  func(phc, password string) (bool, error)
	idle    time.Duration
	gap     time.Duration
	release func()
	now     func() time.Time
	after   func(time.Duration, func()) (stop func() bool)

	mu          sync.Mutex
	active      int       // Verify calls running or waiting for a worker
	pending     bool      // a verification ended since memory was last returned
	lastRelease time.Time // when memory was last returned
	stopTimer   func() bool
	gen         uint64 // invalidates a release timer that fired late
}

// VerifierOptions configure a Verifier; zero values take the defaults.
type VerifierOptions struct {
	// Workers is how many verifications run at once: DefaultWorkers if 0.
	Workers int
	// IdleRelease is how long verifications must have stopped before their
	// memory is returned to the OS (default 1s; negative: never). The wait lets
	// a storm end before the work of returning memory is done, once.
	IdleRelease time.Duration
	// MinReleaseGap is the least time between two returns (default 10s): each is
	// a full garbage collection, which a trickle of logins must not repeat.
	MinReleaseGap time.Duration
}

// DefaultWorkers is half the Go scheduler's cores, at least one: forwarding
// keeps the other half however many password logins arrive.
func DefaultWorkers() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// NewVerifier returns a Verifier with its own worker pool. A process normally
// uses the one VerifyPasswordContext shares, since workers and memory are the
// process's.
func NewVerifier(o VerifierOptions) *Verifier {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers()
	}
	if o.IdleRelease == 0 {
		o.IdleRelease = time.Second
	}
	if o.MinReleaseGap == 0 {
		o.MinReleaseGap = 10 * time.Second
	}
	return &Verifier{
		slots:   make(chan struct{}, o.Workers),
		verify:  VerifyPassword,
		idle:    o.IdleRelease,
		gap:     o.MinReleaseGap,
		release: debug.FreeOSMemory,
		now:     time.Now,
		after: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
	}
}

var shared = sync.OnceValue(func() *Verifier { return NewVerifier(VerifierOptions{}) })

// VerifyPasswordContext is VerifyPassword on the process's shared Verifier: it
// waits for a worker until ctx ends, and then returns ctx.Err().
func VerifyPasswordContext(ctx context.Context, phc, password string) (bool, error) {
	return shared().Verify(ctx, phc, password)
}

// Verify is VerifyPassword run by one of v's workers. It waits for a worker
// until ctx ends, and then returns ctx.Err().
func (v *Verifier) Verify(ctx context.Context, phc, password string) (bool, error) {
	v.mu.Lock()
	v.active++
	if v.stopTimer != nil {
		v.stopTimer()
		v.stopTimer = nil
	}
	v.gen++
	v.mu.Unlock()
	defer v.done()
	select {
	case v.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-v.slots }()
	return v.verify(phc, password)
}

func (v *Verifier) done() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.active--
	v.pending = true
	if v.active > 0 || v.idle < 0 {
		return
	}
	wait := v.idle
	if next := v.lastRelease.Add(v.gap).Sub(v.now()); next > wait {
		wait = next
	}
	gen := v.gen
	v.stopTimer = v.after(wait, func() { v.releaseIfIdle(gen) })
}

// releaseIfIdle returns freed memory to the OS unless a verification started
// since the timer was set (gen changed) or none ended since the last return.
func (v *Verifier) releaseIfIdle(gen uint64) {
	v.mu.Lock()
	if v.gen != gen || v.active > 0 || !v.pending {
		v.mu.Unlock()
		return
	}
	v.pending = false
	v.stopTimer = nil
	v.lastRelease = v.now()
	v.mu.Unlock()
	v.release()
}
