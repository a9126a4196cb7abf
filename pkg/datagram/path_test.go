// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"testing"
	"time"
)

// simLink runs a Path against a simulated path in steps of 10 ms: a probe
// is answered one RTT later when the path is open and carries its size.
type simLink struct {
	t       *testing.T
	p       *Path
	now     time.Time
	open    bool
	mtu     int // largest datagram carried
	rtt     time.Duration
	pending []struct {
		at time.Time
		pr Probe
	}
	lossEvery int // drop every n-th probe (0: none)
	sent      int
}

func newSim(t *testing.T, cfg PathConfig, mtu int) *simLink {
	now := time.Unix(1000, 0)
	return &simLink{t: t, p: NewPath(cfg, now), now: now, open: true, mtu: mtu, rtt: 40 * time.Millisecond}
}

func (s *simLink) run(d time.Duration) {
	end := s.now.Add(d)
	var out [2]Probe
	for s.now.Before(end) {
		n := s.p.Tick(s.now, &out)
		for _, pr := range out[:n] {
			s.sent++
			if s.open && pr.Size <= s.mtu && (s.lossEvery == 0 || s.sent%s.lossEvery != 0) {
				s.pending = append(s.pending, struct {
					at time.Time
					pr Probe
				}{s.now.Add(s.rtt), pr})
			}
		}
		keep := s.pending[:0]
		for _, q := range s.pending {
			if !q.at.After(s.now) {
				s.p.OnAck(s.now, q.pr.ID, q.pr.Size)
			} else {
				keep = append(keep, q)
			}
		}
		s.pending = keep
		s.now = s.now.Add(10 * time.Millisecond)
	}
}

// until runs until cond holds, failing after limit; it returns how long it took.
func (s *simLink) until(limit time.Duration, cond func() bool) time.Duration {
	start := s.now
	for !cond() {
		if s.now.Sub(start) > limit {
			s.t.Fatalf("condition not met within %v", limit)
		}
		s.run(10 * time.Millisecond)
	}
	return s.now.Sub(start)
}

func TestPathUpDownUp(t *testing.T) {
	cfg := DefaultPathConfig()
	s := newSim(t, cfg, 1472)
	if s.p.Up() {
		t.Fatal("up before any probe was answered")
	}
	if d := s.until(time.Second, s.p.Up); d > 100*time.Millisecond {
		t.Fatalf("up after %v, want one RTT", d)
	}
	s.run(5 * time.Second)
	if !s.p.Up() {
		t.Fatal("went down on a working path")
	}
	// Blocked: down within Dead plus an interval (the 3 s).
	s.open = false
	if d := s.until(3*time.Second, func() bool { return !s.p.Up() }); d > cfg.Dead+cfg.Interval {
		t.Fatalf("fell back after %v, want within %v", d, cfg.Dead+cfg.Interval)
	}
	if st, _, _ := s.p.State(); st != Down {
		t.Fatalf("state %v, want down", st)
	}
	if s.p.Size() != MinDatagram {
		t.Fatalf("size %d after the path went down, want the base %d", s.p.Size(), MinDatagram)
	}
	s.run(20 * time.Second)
	if s.p.Up() {
		t.Fatal("up while blocked")
	}
	// Unblocked: back within an interval and an RTT.
	s.open = true
	if d := s.until(10*time.Second, s.p.Up); d > cfg.Interval+s.rtt+20*time.Millisecond {
		t.Fatalf("returned after %v", d)
	}
	if _, changes, _ := s.p.State(); changes != 3 {
		t.Fatalf("%d state changes, want 3 (up, down, up)", changes)
	}
}

// Occasional probe loss does not take a working path down.
func TestPathSurvivesLoss(t *testing.T) {
	s := newSim(t, DefaultPathConfig(), 1472)
	s.lossEvery = 3
	s.until(time.Second, s.p.Up)
	s.run(60 * time.Second)
	if _, changes, _ := s.p.State(); changes != 1 {
		t.Fatalf("%d state changes under 33%% probe loss, want 1", changes)
	}
}

// The size search finds the path's MTU from below, whatever it is, without
// ever claiming more.
func TestPathMTUSearch(t *testing.T) {
	for _, mtu := range []int{MinDatagram, 1300, 1372, 1452, 1472} {
		cfg := DefaultPathConfig()
		cfg.MaxSize = 1472
		s := newSim(t, cfg, mtu)
		s.until(time.Second, s.p.Up)
		s.until(30*time.Second, func() bool {
			if s.p.Size() > mtu {
				t.Fatalf("path MTU %d: size %d claimed", mtu, s.p.Size())
			}
			return mtu-s.p.Size() < 8
		})
	}
	// A path MTU that grows is found at the next search.
	cfg := DefaultPathConfig()
	cfg.Research = time.Minute
	s := newSim(t, cfg, 1300)
	s.until(time.Second, s.p.Up)
	s.until(30*time.Second, func() bool { return s.p.Size() >= 1292 })
	s.mtu = 1472
	s.until(2*time.Minute, func() bool { return s.p.Size() == 1472 })
}

// PlanSize is the ceiling while the first search runs and the size found
// once it ended: on a path that carries the ceiling, TCP segments are
// planned for it from the start; on a smaller one, for what it carries.
func TestPathPlanSize(t *testing.T) {
	cfg := DefaultPathConfig()
	for _, mtu := range []int{1472, 1400} {
		s := newSim(t, cfg, mtu)
		if got := s.p.PlanSize(); got != 1472 {
			t.Fatalf("mtu %d: PlanSize %d before the search, want the ceiling 1472", mtu, got)
		}
		s.until(30*time.Second, func() bool { return s.p.found })
		if got, size := s.p.PlanSize(), s.p.Size(); got != size || size > mtu || size < mtu-8 {
			t.Fatalf("mtu %d: PlanSize %d, Size %d after the search", mtu, got, size)
		}
		// Down: the search starts over, planning for the ceiling again.
		s.open = false
		s.until(10*time.Second, func() bool { return !s.p.Up() })
		if got := s.p.PlanSize(); got != 1472 {
			t.Fatalf("mtu %d: PlanSize %d after the path went down", mtu, got)
		}
	}
}
