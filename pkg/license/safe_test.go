// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

func TestSafe(t *testing.T) {
	h := func(m string, written, applied, inUse int) Held {
		return Held{Member: m, Written: written, Applied: applied, InUse: inUse}
	}
	tests := []struct {
		name  string
		total int
		ideal map[string]int
		held  []Held
		want  map[string]int
	}{
		{
			// The race seen end to end: b just admitted (its report still
			// says 0 in use), the ideal moves b's license to a.
			name:  "a license moves in two steps: b lowered now, a raised later",
			total: 2,
			ideal: map[string]int{"a": 2, "b": 0},
			held:  []Held{h("a", 1, 1, 1), h("b", 1, 1, 0)},
			want:  map[string]int{"a": 1, "b": 0},
		},
		{
			name:  "b confirmed its decrease: a gets the license",
			total: 2,
			ideal: map[string]int{"a": 2, "b": 0},
			held:  []Held{h("a", 1, 1, 1), h("b", 0, 0, 0)},
			want:  map[string]int{"a": 2, "b": 0},
		},
		{
			name:  "no second decrease before the first is confirmed",
			total: 10,
			ideal: map[string]int{"a": 2, "b": 1},
			held:  []Held{h("a", 5, 5, 2), h("b", 3, 5, 1)},
			want:  map[string]int{"a": 2, "b": 3},
		},
		{
			// c's 2 are not free until c confirms: a and b share the 4 left.
			name:  "increases share what is free beyond every reserve",
			total: 10,
			ideal: map[string]int{"a": 6, "b": 7, "c": 0},
			held:  []Held{h("a", 2, 2, 2), h("b", 2, 2, 2), h("c", 2, 2, 0)},
			want:  map[string]int{"a": 4, "b": 4, "c": 0},
		},
		{
			name:  "members that report nothing are taken at their word",
			total: 4,
			ideal: map[string]int{"a": 3, "b": 1},
			held:  []Held{h("a", 2, -1, 2), h("b", 2, -1, 0)},
			want:  map[string]int{"a": 2, "b": 1},
		},
		{
			name:  "unlimited passes through",
			total: -1,
			ideal: map[string]int{"a": -1},
			held:  []Held{h("a", 3, 3, 3)},
			want:  map[string]int{"a": -1},
		},
		{
			name:  "steady state writes the ideal",
			total: 6,
			ideal: map[string]int{"a": 3, "b": 3},
			held:  []Held{h("a", 3, 3, 1), h("b", 3, 3, 2)},
			want:  map[string]int{"a": 3, "b": 3},
		},
	}
	for _, tt := range tests {
		if got := Safe(tt.total, tt.ideal, tt.held); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Safe = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// simMember is a member as the license protocol sees it: a Gate applying
// the last allocation it read (which may lag the operator's writes), and a
// report (applied, in use) as of its last Lease renewal.
type simMember struct {
	name            string
	gate            *Gate
	reportedApplied int
	reportedInUse   int
}

// TestSafeNeverOversubscribes runs the operator (Allocate then Safe, on
// stale reports) against members that admit and release at random and
// apply and report allocations late and out of step. At every step the
// sessions admitted across the cluster stay within the license, and once
// usage stops moving the written allocations settle on the ideal.
func TestSafeNeverOversubscribes(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(propertySeed, seed))
		total := 1 + r.IntN(12)
		n := 1 + r.IntN(4)
		members := make([]*simMember, n)
		written := map[string]int{}
		for i := range members {
			members[i] = &simMember{name: fmt.Sprintf("m%d", i), gate: NewGate(0, 0), reportedApplied: 0}
		}
		operator := func() map[string]int {
			var usage []Usage
			var held []Held
			for _, m := range members {
				usage = append(usage, Usage{Member: m.name, Ready: true, InUse: m.reportedInUse})
				held = append(held, Held{Member: m.name, Written: written[m.name], Applied: m.reportedApplied, InUse: m.reportedInUse})
			}
			ideal := Allocate(total, usage, 1)
			written = Safe(total, ideal, held)
			return ideal
		}
		check := func(step int) {
			sum := 0
			for _, m := range members {
				c, _ := m.gate.InUse()
				sum += c
			}
			if sum > total {
				t.Fatalf("seed %d step %d: %d sessions admitted on a license of %d (written %v)", seed, step, sum, total, written)
			}
		}
		for step := range 200 {
			switch r.IntN(4) {
			case 0:
				operator()
			case 1: // a member reads the latest allocation
				m := members[r.IntN(n)]
				m.gate.SetAllocation(written[m.name], 0)
			case 2: // a member renews its Lease
				m := members[r.IntN(n)]
				m.reportedApplied, _ = m.gate.Allocation()
				m.reportedInUse, _ = m.gate.InUse()
			case 3: // a session arrives or ends
				m := members[r.IntN(n)]
				if r.IntN(2) == 0 {
					m.gate.TryAcquire(sessionkind.Client)
				} else {
					m.gate.Release(sessionkind.Client)
				}
			}
			check(step)
		}
		// Usage frozen, every member applying and reporting between passes:
		// the writes settle on the ideal within a few passes.
		var ideal map[string]int
		for range 4 {
			ideal = operator()
			for _, m := range members {
				m.gate.SetAllocation(written[m.name], 0)
				m.reportedApplied, _ = m.gate.Allocation()
				m.reportedInUse, _ = m.gate.InUse()
			}
			check(-1)
		}
		if !reflect.DeepEqual(written, ideal) {
			t.Fatalf("seed %d: writes did not settle: written %v, ideal %v", seed, written, ideal)
		}
	}
}
