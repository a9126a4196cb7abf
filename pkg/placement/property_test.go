// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

const propertySeed = 20261122

// randomSnapshot builds a fleet with unique names in which every situation
// Place distinguishes occurs often: unready and failed members, failed names
// that are gone, full and capacity-less members, odd weights, hubs that are
// new, kept, orphaned or on removed members, and holds.
func randomSnapshot(r *rand.Rand) Snapshot {
	var s Snapshot
	weights := []int{0, 50, 100, 150, 200, 300}
	maxes := []int{0, 5, 20, 100, 1000}
	nm := r.IntN(25)
	for i := range nm {
		m := Member{
			Name:        fmt.Sprintf("m%02d", i),
			Ready:       r.IntN(100) < 85,
			Weight:      weights[r.IntN(len(weights))],
			MaxSessions: maxes[r.IntN(len(maxes))],
		}
		m.Sessions = r.IntN(m.MaxSessions + 6)
		s.Members = append(s.Members, m)
		if r.IntN(100) < 15 {
			s.Failed = append(s.Failed, m.Name)
		}
	}
	for i := range r.IntN(3) {
		s.Failed = append(s.Failed, fmt.Sprintf("gone%d", i))
	}
	nh := r.IntN(200)
	for i := range nh {
		h := Hub{Key: fmt.Sprintf("ns/h%03d", i), Type: Dynamic, Sessions: r.IntN(25)}
		switch k := r.IntN(100); {
		case k < 15:
			h.Type = Static
		case k < 40:
			// new hub
		case k < 90 && nm > 0:
			h.Assigned = fmt.Sprintf("m%02d", r.IntN(nm))
		case k < 95 && len(s.Failed) > 0:
			h.Assigned = s.Failed[r.IntN(len(s.Failed))]
		default:
			h.Assigned = fmt.Sprintf("removed%d", r.IntN(3))
		}
		if r.IntN(100) < 30 {
			h.Sessions = 0
		}
		s.Hubs = append(s.Hubs, h)
	}
	s.MaxUnavailable = r.IntN(5) - 1
	return s
}

// checkInvariants states what a user relies on, independently of how Place
// computes it.
func checkInvariants(t *testing.T, s Snapshot, d Decision) {
	t.Helper()
	failed := map[string]bool{}
	for _, n := range s.Failed {
		failed[n] = true
	}
	members := map[string]Member{}
	for _, m := range s.Members {
		members[m.Name] = m
		if !m.Ready {
			failed[m.Name] = true
		}
	}
	var healthy []string
	for _, m := range s.Members {
		if !failed[m.Name] {
			healthy = append(healthy, m.Name)
		}
	}
	slices.Sort(healthy)
	holding := len(failed) > max(s.MaxUnavailable, 0)

	unplaced := map[string]bool{}
	for _, k := range d.Unplaced {
		unplaced[k] = true
	}
	moves := map[string]Move{}
	for _, mv := range d.Moves {
		moves[mv.Hub] = mv
	}
	if !slices.IsSortedFunc(d.Moves, func(a, b Move) int { return compareStrings(a.Hub, b.Hub) }) || !slices.IsSorted(d.Unplaced) {
		t.Errorf("Moves or Unplaced not sorted")
	}

	load := map[string]int{}       // sessions after the moves
	smallestIn := map[string]int{} // smallest hub moved onto each member
	keptOnFailed := false
	dynamicHubs := 0
	for _, h := range s.Hubs {
		if h.Type == Static {
			if got := d.Static[h.Key]; !slices.Equal(got, healthy) || got == nil {
				t.Errorf("static %s on %v, want %v", h.Key, got, healthy)
			}
			continue
		}
		dynamicHubs++
		to, placed := d.Dynamic[h.Key]
		if placed == unplaced[h.Key] {
			t.Errorf("hub %s: placed=%v unplaced=%v, want exactly one", h.Key, placed, unplaced[h.Key])
			continue
		}
		_, isMember := members[h.Assigned]
		switch {
		case h.Assigned != "" && isMember && !failed[h.Assigned]:
			if to != h.Assigned || moves[h.Key] != (Move{}) {
				t.Errorf("healthy hub %s moved from %s to %q", h.Key, h.Assigned, to)
			}
		case failed[h.Assigned] && holding:
			keptOnFailed = true
			if to != h.Assigned || moves[h.Key] != (Move{}) {
				t.Errorf("held hub %s moved from %s to %q", h.Key, h.Assigned, to)
			}
		case placed:
			if !slices.Contains(healthy, to) {
				t.Errorf("hub %s placed on unhealthy member %q", h.Key, to)
			}
			m := members[to]
			if full(m.Sessions, m.Weight, m.MaxSessions) {
				t.Errorf("hub %s placed on %s which was already full", h.Key, to)
			}
			reason := ReasonMemberRemoved
			if h.Assigned == "" {
				reason = ReasonInitial
			} else if failed[h.Assigned] {
				reason = ReasonMemberFailed
			}
			if want := (Move{Hub: h.Key, From: h.Assigned, To: to, Reason: reason}); moves[h.Key] != want {
				t.Errorf("move of %s = %+v, want %+v", h.Key, moves[h.Key], want)
			}
			load[to] += h.Sessions
			if v, ok := smallestIn[to]; !ok || h.Sessions < v {
				smallestIn[to] = h.Sessions
			}
		}
	}
	if len(d.Dynamic)+len(d.Unplaced) != dynamicHubs || len(d.Static)+dynamicHubs != len(s.Hubs) {
		t.Errorf("decision covers %d dynamic + %d unplaced + %d static, snapshot has %d hubs (%d dynamic)",
			len(d.Dynamic), len(d.Unplaced), len(d.Static), len(s.Hubs), dynamicHubs)
	}
	for hub := range moves {
		if d.Dynamic[hub] == "" {
			t.Errorf("move for %s which is not placed", hub)
		}
	}
	if d.Held != (holding && keptOnFailed) || d.Held != (d.HeldReason != "") {
		t.Errorf("Held = %v (%q), holding=%v keptOnFailed=%v", d.Held, d.HeldReason, holding, keptOnFailed)
	}

	// Biggest hubs go first, so the last one a member took was its smallest;
	// the member must have had room just before it.
	for name, in := range load {
		m := members[name]
		if full(m.Sessions+in-smallestIn[name], m.Weight, m.MaxSessions) {
			t.Errorf("member %s took a hub while full", name)
		}
	}
	// A hub is unplaced only when no healthy member has room left.
	if len(d.Unplaced) > 0 {
		for _, name := range healthy {
			m := members[name]
			if !full(m.Sessions+load[name], m.Weight, m.MaxSessions) {
				t.Errorf("%v unplaced while %s has room", d.Unplaced, name)
			}
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestPlaceProperties(t *testing.T) {
	for i := range 1000 {
		r := rand.New(rand.NewPCG(propertySeed, uint64(i)))
		s := randomSnapshot(r)
		d := Place(s)
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkInvariants(t, s, d) })
		if t.Failed() {
			t.Fatalf("iteration %d (seed %d) failed; snapshot: %+v", i, propertySeed, s)
		}
	}
}

// With zero sessions everywhere and one capacity, new hubs fill members in
// proportion to weight: no member holds more than one hub beyond its share relative to any
// other, (nᵢ−1)/wᵢ ≤ nⱼ/wⱼ; with equal weights that means counts differ by at
// most one.
func TestSpreadProperties(t *testing.T) {
	for i := range 500 {
		r := rand.New(rand.NewPCG(propertySeed+1, uint64(i)))
		equal := i%2 == 0
		var s Snapshot
		nm := 1 + r.IntN(60)
		w := []int{0, 50, 100, 150, 200, 300}
		sameWeight := w[r.IntN(len(w))]
		// One capacity for the whole fleet: the point measures load
		// relative to capacity, so a bigger member rightly takes more.
		capacity := 1 + r.IntN(2000)
		for j := range nm {
			m := Member{Name: fmt.Sprintf("m%02d", j), Ready: true, MaxSessions: capacity, Weight: sameWeight}
			if !equal {
				m.Weight = w[r.IntN(len(w))]
			}
			s.Members = append(s.Members, m)
		}
		nh := r.IntN(3000)
		for j := range nh {
			s.Hubs = append(s.Hubs, dyn(fmt.Sprintf("ns/h%04d", j), "", 0))
		}
		d := Place(s)
		if len(d.Dynamic) != nh {
			t.Fatalf("iteration %d: placed %d of %d hubs", i, len(d.Dynamic), nh)
		}
		n := countPerMember(d)
		weight := func(m Member) int {
			if m.Weight <= 0 {
				return DefaultWeight
			}
			return m.Weight
		}
		counts := make([]int, nm)
		for j, a := range s.Members {
			counts[j] = n[a.Name]
			for _, b := range s.Members {
				if (n[a.Name]-1)*weight(b) > n[b.Name]*weight(a) {
					t.Fatalf("iteration %d: %s (weight %d) has %d hubs, %s (weight %d) only %d",
						i, a.Name, weight(a), n[a.Name], b.Name, weight(b), n[b.Name])
				}
			}
		}
		if equal && nh > 0 && slices.Max(counts)-slices.Min(counts) > 1 {
			t.Fatalf("iteration %d: equal weights, counts %v differ by more than one", i, counts)
		}
	}
}
