// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/hub"
)

// fakeServices counts the services singletons starts and stops, per hub.
type fakeServices struct {
	mu      sync.Mutex
	running map[string]int
	started map[string]int
}

type fakeService struct {
	f    *fakeServices
	hub  string
	done chan struct{}
}

func (s fakeService) Done() <-chan struct{} { return s.done }
func (s fakeService) Err() error            { return nil }
func (s fakeService) Stop() []any {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.running[s.hub]--
	return nil
}

func (f *fakeServices) state(name string) (running, started int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[name], f.started[name]
}

// newTestSingletons is a singletons of member "m0" with a fresh Lease,
// serving every hub in hubs, whose services are fakes.
func newTestSingletons(t *testing.T, hubs ...string) (*singletons, *fakeServices) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lease := &leaseState{duration: time.Hour, log: log, applied: true, lastRenew: time.Now()}
	sws := map[string]*hub.Hub{}
	for _, name := range hubs {
		sw := hub.New(name, hub.Options{})
		t.Cleanup(sw.Close)
		sws[name] = sw
	}
	f := &fakeServices{running: map[string]int{}, started: map[string]int{}}
	start := func(sw *hub.Hub, sp singletonSpec) (service, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.running[sp.hub]++
		f.started[sp.hub]++
		return fakeService{f: f, hub: sp.hub, done: make(chan struct{})}, nil
	}
	b := newSingletons("dhcp server", "m0", log, lease, time.Second, func(n string) *hub.Hub { return sws[n] }, start, nil)
	t.Cleanup(b.close)
	return b, f
}

// waitService waits until hub's service runs running times, started in all.
func waitService(t *testing.T, f *fakeServices, hub string, running, started int) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("%s running %d, started %d", hub, running, started), func() error {
		if r, s := f.state(hub); r != running || s != started {
			return fmt.Errorf("running %d, started %d", r, s)
		}
		return nil
	})
}

func activated(hub, holder, token string) singletonSpec {
	return singletonSpec{hub: hub, conf: "pool", holder: holder, active: true, token: token}
}

// Only an activation in the process's first snapshot is inherited (it may
// name the previous process); a hub that gains its service later can be
// seen for the first time already activated for this process — the spec
// change and the operator's activation in one watch batch — and its
// service must start. (The DHCP server of a pool added after the members
// started stayed down in CI this way: the member took the fresh activation
// for an inherited one.)
func TestSingletonInheritsOnlyTheFirstSnapshot(t *testing.T) {
	b, f := newTestSingletons(t, "ns/old", "ns/new")

	// First snapshot: ns/old is activated for this member, maybe for the
	// process before this one, so nothing starts until a new activation.
	b.sync([]singletonSpec{activated("ns/old", "m0", "member m0 (container aaa)")}, false)
	b.sync([]singletonSpec{activated("ns/old", "m0", "member m0 (container aaa)")}, false)
	if r, s := f.state("ns/old"); r != 0 || s != 0 {
		t.Fatalf("the activation found at start was taken (running %d, started %d)", r, s)
	}

	// ns/new is first seen after the first snapshot, already activated:
	// it starts at once; ns/old still waits.
	specs := []singletonSpec{
		activated("ns/old", "m0", "member m0 (container aaa)"),
		activated("ns/new", "m0", "member m0 (container bbb)"),
	}
	b.sync(specs, false)
	waitService(t, f, "ns/new", 1, 1)
	if r, _ := f.state("ns/old"); r != 0 {
		t.Fatal("the inherited activation started once another hub appeared")
	}

	// A new activation of ns/old (for this process) starts it.
	specs[0] = activated("ns/old", "m0", "member m0 (container bbb)")
	b.sync(specs, false)
	waitService(t, f, "ns/old", 1, 1)

	// Moved away, then back with the same message: stopped, then started
	// again (after the first snapshot nothing is inherited).
	specs[1] = activated("ns/new", "m1", "member m1 (container ccc)")
	b.sync(specs, false)
	waitService(t, f, "ns/new", 0, 1)
	specs[1] = activated("ns/new", "m0", "member m0 (container bbb)")
	b.sync(specs, false)
	waitService(t, f, "ns/new", 1, 2)

	// The hub loses its service and gains it again already activated: it
	// starts.
	b.sync(specs[:1], false)
	waitService(t, f, "ns/new", 0, 2)
	b.sync(specs, false)
	waitService(t, f, "ns/new", 1, 3)

	// Fenced: everything stops.
	b.sync(specs, true)
	waitService(t, f, "ns/old", 0, 1)
	waitService(t, f, "ns/new", 0, 3)
}
