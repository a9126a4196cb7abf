// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

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
			// The end-to-end deadlock: a (the owner of a dynamic hub) serves
			// 4, 2 of them on licenses borrowed from b and c; b was lowered
			// to 1 and confirmed. Counting the loans at both ends put the
			// reserves at 6 of 5, and b's freed license went nowhere.
			name:  "a loan counts at its lender only",
			total: 5,
			ideal: map[string]int{"a": 5, "b": 0, "c": 0},
			held: []Held{
				{Member: "a", Written: 2, Applied: 2, InUse: 4, Borrowed: 2},
				{Member: "b", Written: 1, Applied: 1, Lent: 1},
				{Member: "c", Written: 1, Applied: 1, Lent: 1},
			},
			want: map[string]int{"a": 3, "b": 0, "c": 0},
		},
		{
			// b was lowered below what it has lent: the loan stays in its
			// reserve until the borrower gives it back.
			name:  "a lender lowered below its loans still reserves them",
			total: 3,
			ideal: map[string]int{"a": 3, "b": 0},
			held: []Held{
				{Member: "a", Written: 2, Applied: 2, InUse: 3, Borrowed: 1},
				{Member: "b", Written: 0, Applied: 0, Lent: 1},
			},
			want: map[string]int{"a": 2, "b": 0},
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
	// Loans: from holds what it borrowed, by lender; the reports are as of
	// the last renewal.
	from             map[string]int
	reportedLent     int
	reportedBorrowed map[string]int
}

// repayment is a loan given back, on its way to the lender.
type repayment struct{ lender *simMember }

// TestSafeNeverOversubscribes runs the operator (Allocate, Damp, then Safe,
// on stale reports) against members that admit and release at random,
// apply and report allocations late and out of step, and lend, borrow and
// repay licenses between them (repayments arriving late). At every step the
// sessions admitted across the cluster stay within the license, and once
// usage stops moving the written allocations settle on the ideal.
func TestSafeNeverOversubscribes(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(propertySeed, seed))
		total := 1 + r.IntN(12)
		n := 1 + r.IntN(4)
		members := make([]*simMember, n)
		byName := map[string]*simMember{}
		written := map[string]int{}
		for i := range members {
			members[i] = &simMember{name: fmt.Sprintf("m%d", i), gate: NewGate(0, 0), from: map[string]int{}}
			byName[members[i].name] = members[i]
		}
		var inFlight []repayment
		since := map[string]time.Time{}
		now := time.Unix(0, 0)
		operator := func() map[string]int {
			var usage []Usage
			var held []Held
			lentReported := map[string]int{}
			for _, m := range members {
				for l, k := range m.reportedBorrowed {
					lentReported[l] += k
				}
			}
			for _, m := range members {
				usage = append(usage, Usage{Member: m.name, Ready: true, InUse: m.reportedInUse})
				borrowed := 0
				for _, k := range m.reportedBorrowed {
					borrowed += k
				}
				held = append(held, Held{Member: m.name, Written: written[m.name], Applied: m.reportedApplied, InUse: m.reportedInUse,
					Lent: max(m.reportedLent, lentReported[m.name]), Borrowed: borrowed, Ready: true})
			}
			ideal := Allocate(total, usage, 1)
			damped, _ := Damp(total, ideal, held, since, now, 3*time.Second)
			written = Safe(total, damped, held)
			return ideal
		}
		report := func(m *simMember) {
			m.reportedApplied, _ = m.gate.Allocation()
			m.reportedInUse, _ = m.gate.InUse()
			lent, _ := m.gate.Loans()
			m.reportedLent = lent[sessionkind.Client]
			m.reportedBorrowed = maps.Clone(m.from)
		}
		check := func(step int) {
			sum := 0
			for _, m := range members {
				c, _ := m.gate.InUse()
				sum += c
			}
			if sum > total {
				for _, m := range members {
					lent, borrowed := m.gate.Loans()
					a, _ := m.gate.Allocation()
					u, _ := m.gate.InUse()
					t.Logf("%s: alloc %d, in use %d, lent %d, borrowed %d %v; last report: applied %d, in use %d, lent %d, borrowed %v",
						m.name, a, u, lent[sessionkind.Client], borrowed[sessionkind.Client], m.from, m.reportedApplied, m.reportedInUse, m.reportedLent, m.reportedBorrowed)
				}
				t.Logf("%d repayments on their way", len(inFlight))
				t.Fatalf("seed %d step %d: %d sessions admitted on a license of %d (written %v)", seed, step, sum, total, written)
			}
		}
		for step := range 200 {
			now = now.Add(time.Second)
			switch r.IntN(7) {
			case 0:
				operator()
			case 1: // a member reads the latest allocation
				m := members[r.IntN(n)]
				m.gate.SetAllocation(written[m.name], 0)
			case 2: // a member renews its Lease
				report(members[r.IntN(n)])
			case 3: // a session arrives (borrowing when it must) or ends
				m := members[r.IntN(n)]
				if r.IntN(2) == 0 {
					if !m.gate.TryAcquire(sessionkind.Client) {
						l := members[r.IntN(n)]
						if l != m && l.gate.Lend(sessionkind.Client) {
							m.gate.AddBorrowed(sessionkind.Client)
							m.from[l.name]++
							m.gate.TryAcquire(sessionkind.Client)
						}
					}
				} else {
					m.gate.Release(sessionkind.Client)
				}
			case 4: // a borrower gives back what it has free
				m := members[r.IntN(n)]
				for l, k := range m.from {
					if k > 0 && m.gate.TakeSurplus(sessionkind.Client) {
						m.from[l]--
						inFlight = append(inFlight, repayment{byName[l]})
					}
				}
			case 5: // a repayment arrives
				if len(inFlight) > 0 {
					i := r.IntN(len(inFlight))
					l := inFlight[i].lender
					lent, _ := l.gate.Loans()
					l.gate.SetLent(sessionkind.Client, lent[sessionkind.Client]-1)
					inFlight = append(inFlight[:i], inFlight[i+1:]...)
				}
			case 6:
				operator()
			}
			check(step)
		}
		// Usage frozen, repayments delivered, every member applying,
		// giving back its surplus and reporting between passes: the writes
		// settle on the ideal within a few passes once the damping is over.
		var ideal map[string]int
		for range 8 {
			now = now.Add(2 * time.Second)
			ideal = operator()
			for _, m := range members {
				m.gate.SetAllocation(written[m.name], 0)
				for l, k := range m.from {
					for ; k > 0 && m.gate.TakeSurplus(sessionkind.Client); k-- {
						m.from[l]--
						inFlight = append(inFlight, repayment{byName[l]})
					}
				}
			}
			for _, p := range inFlight {
				lent, _ := p.lender.gate.Loans()
				p.lender.gate.SetLent(sessionkind.Client, lent[sessionkind.Client]-1)
			}
			inFlight = nil
			for _, m := range members {
				report(m)
			}
			check(-1)
		}
		// Every license can be used: what the members admit up to, or use
		// where they are above it (lowered below their sessions), adds up to
		// the total: none is stuck between two members. The allocations reach the ideal once no
		// loan is out; a loan under a session lasts until the session ends.
		capacity, loansOut := 0, false
		var st []string
		for _, m := range members {
			lent, borrowed := m.gate.Loans()
			a, _ := m.gate.Allocation()
			u, _ := m.gate.InUse()
			capacity += max(a-lent[sessionkind.Client]+borrowed[sessionkind.Client], u)
			loansOut = loansOut || borrowed[sessionkind.Client] > 0
			st = append(st, fmt.Sprintf("%s alloc %d inUse %d lent %d borrowed %d", m.name, a, u, lent[sessionkind.Client], borrowed[sessionkind.Client]))
		}
		if capacity != total {
			t.Fatalf("seed %d: the members admit up to %d on a license of %d once settled: written %v, ideal %v; members %v", seed, capacity, total, written, ideal, st)
		}
		if !loansOut && !reflect.DeepEqual(written, ideal) {
			t.Fatalf("seed %d: writes did not settle: written %v, ideal %v; members %v", seed, written, ideal, st)
		}
	}
}
