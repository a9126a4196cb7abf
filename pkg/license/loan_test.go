// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import (
	"math/rand/v2"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// A burst on one member borrows the others' idle licenses; a refusal then
// means the total is in use; the loan goes back once the session ends.
func TestLoanBurst(t *testing.T) {
	c := sessionkind.Client
	a, b := NewGate(2, 0), NewGate(3, 0)
	for range 2 {
		if !a.TryAcquire(c) {
			t.Fatal("refused within the allocation")
		}
	}
	if a.TryAcquire(c) {
		t.Fatal("admitted beyond the allocation without a loan")
	}
	for range 3 {
		if !b.Lend(c) {
			t.Fatal("an idle license was not lent")
		}
		a.AddBorrowed(c)
		if !a.TryAcquire(c) {
			t.Fatal("refused although a license was borrowed")
		}
	}
	if b.Lend(c) || b.TryAcquire(c) {
		t.Fatal("the lender lent or admitted beyond what it had left")
	}
	a.Release(c)
	if !a.TakeSurplus(c) {
		t.Fatal("a borrowed license not in use was not given back")
	}
	if a.TakeSurplus(c) {
		t.Fatal("a borrowed license in use was given back")
	}
	lent, _ := b.Loans()
	b.SetLent(c, lent[c]-1) // the repayment arrives
	if !b.TryAcquire(c) {
		t.Fatal("the repaid license is not usable by its owner")
	}
}

// A lender whose allocation the operator lowers while a loan is out admits
// less, and never lends what it no longer has.
func TestLoanThenLowerAllocation(t *testing.T) {
	c := sessionkind.Client
	b := NewGate(3, 0)
	b.Lend(c)
	b.SetAllocation(1, 0)
	if b.TryAcquire(c) || b.Lend(c) {
		t.Fatal("admitted or lent with allocation 1 and one license lent out")
	}
	if NewGate(Unlimited, Unlimited).Lend(c) {
		t.Fatal("an unlimited gate lent a license")
	}
}

// Random acquisitions, releases, loans, repayments and operator changes
// that keep Σ allocations ≤ total: the members never admit more than total.
func TestLoansNeverOversubscribe(t *testing.T) {
	c := sessionkind.Client
	const total = 7
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		alloc := []int{3, 2, 2}
		gates := []*Gate{NewGate(3, 0), NewGate(2, 0), NewGate(2, 0)}
		// loans[i][j]: licenses j lent to i.
		loans := [3][3]int{}
		for step := range 300 {
			i, j := r.IntN(3), r.IntN(3)
			switch r.IntN(6) {
			case 0, 1:
				gates[i].TryAcquire(c)
			case 2:
				gates[i].Release(c)
			case 3:
				if i != j && gates[j].Lend(c) {
					gates[i].AddBorrowed(c)
					loans[i][j]++
				}
			case 4:
				for k := range 3 {
					if loans[i][k] > 0 && gates[i].TakeSurplus(c) {
						loans[i][k]--
						lent := 0
						for m := range 3 {
							lent += loans[m][k]
						}
						gates[k].SetLent(c, lent)
						break
					}
				}
			case 5:
				// The operator moves a license from j to i as license.Safe
				// does, with the member reporting as the allocation it
				// applies its effective one (alloc − lent + borrowed, see
				// Effective): a decrease only once j applies its written
				// allocation (no loan in or out) and never below its use;
				// an increase only while the reserves max(written, applied,
				// in use) leave room under the total.
				uj, _ := gates[j].InUse()
				ej, _ := gates[j].Effective()
				if i == j || ej != alloc[j] || alloc[j]-1 < uj {
					break
				}
				alloc[j]--
				gates[j].SetAllocation(alloc[j], 0)
				reserve := 0
				for m, g := range gates {
					u, _ := g.InUse()
					e, _ := g.Effective()
					reserve += max(alloc[m], e, u)
				}
				if reserve+1 <= total {
					alloc[i]++
					gates[i].SetAllocation(alloc[i], 0)
				}
			}
			used := 0
			for _, g := range gates {
				n, _ := g.InUse()
				used += n
			}
			if used > total {
				t.Fatalf("round %d step %d: %d sessions admitted on a total of %d", round, step, used, total)
			}
		}
	}
}
