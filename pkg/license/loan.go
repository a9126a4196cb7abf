// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import "github.com/hubfleet/hubfleet/pkg/sessionkind"

// Loans: a burst of sessions on one member (every session of a dynamic hub
// lands on its owner) must not be refused while licenses sit idle in other
// members' allocations. A member short of a license borrows one from a peer
// that has one free; the lender takes it out of its own allocation before
// the borrower adds it to its own, so at every moment
//
//	Σ over members of (alloc − lent + borrowed) ≤ Σ alloc ≤ total
//
// whatever the operator does meanwhile: it sets alloc (SetAllocation), never
// lent or borrowed, and a lower alloc with a loan out leaves the lender
// admitting less (even nothing), never the borrower more. A borrower gives a
// license back as soon as it has one free (TakeSurplus); it drops one
// before the lender learns, never after.

// effectiveLocked is what the gate admits up to. g.mu must be held.
func (g *Gate) effectiveLocked(k sessionkind.Kind) int {
	return g.alloc[k] - g.lent[k] + g.borrowed[k]
}

// Lend takes one free license of kind k out of this member's own allocation
// for a peer; false when none is free (or the gate is unlimited: a cluster
// without licenses has nothing to lend).
func (g *Gate) Lend(k sessionkind.Kind) bool {
	if !k.Valid() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.lendableLocked(k) {
		return false
	}
	g.lent[k]++
	return true
}

// Lendable reports whether Lend would lend now.
func (g *Gate) Lendable(k sessionkind.Kind) bool {
	if !k.Valid() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lendableLocked(k)
}

// lendableLocked: a free license of its own (a borrowed one goes back to
// its lender), and not unlimited (a cluster without licenses has nothing to
// lend). g.mu must be held.
func (g *Gate) lendableLocked(k sessionkind.Kind) bool {
	if g.alloc[k] == Unlimited {
		return false
	}
	return min(g.effectiveLocked(k)-g.inUse[k], g.alloc[k]-g.lent[k]) >= 1
}

// SetLent sets the licenses of kind k lent out (the member reconciles its
// loans with what borrowers report, loan by loan; see pkg/member/cluster).
func (g *Gate) SetLent(k sessionkind.Kind, n int) {
	if !k.Valid() {
		return
	}
	g.mu.Lock()
	g.lent[k] = max(n, 0)
	g.mu.Unlock()
}

// AddBorrowed adds one license of kind k a peer lent.
func (g *Gate) AddBorrowed(k sessionkind.Kind) {
	if !k.Valid() {
		return
	}
	g.mu.Lock()
	g.borrowed[k]++
	g.mu.Unlock()
}

// DropBorrowed forgets up to n borrowed licenses of kind k (their lender
// failed): sessions admitted on them go on, no new one is.
func (g *Gate) DropBorrowed(k sessionkind.Kind, n int) {
	if !k.Valid() {
		return
	}
	g.mu.Lock()
	g.borrowed[k] = max(g.borrowed[k]-n, 0)
	g.mu.Unlock()
}

// TakeSurplus drops one borrowed license of kind k that this member does
// not use, and reports whether it did: the caller gives it back to its
// lender (after dropping it here, so the two never count it at once).
func (g *Gate) TakeSurplus(k sessionkind.Kind) bool {
	if !k.Valid() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.borrowed[k] == 0 || g.inUse[k] >= g.effectiveLocked(k) {
		return false
	}
	g.borrowed[k]--
	return true
}

// Loans returns the licenses lent out and borrowed, by kind.
func (g *Gate) Loans() (lent, borrowed [sessionkind.N]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lent, g.borrowed
}

// Effective returns the allocations the gate admits up to: alloc − lent +
// borrowed (Unlimited for none): what the member routes and refuses by.
// Its Lease reports alloc and lent instead (Figures), which is what the
// operator's accounting needs (license.Safe).
func (g *Gate) Effective() (client, bridge int) {
	f := g.Figures()
	return f.Effective(sessionkind.Client), f.Effective(sessionkind.Bridge)
}

// Figures are a gate's counts at one moment, by kind.
type Figures struct {
	Alloc, InUse, Lent, Borrowed [sessionkind.N]int
}

// Effective is what the gate admits up to of kind k (Unlimited for none).
func (f Figures) Effective(k sessionkind.Kind) int {
	if f.Alloc[k] == Unlimited {
		return Unlimited
	}
	return f.Alloc[k] - f.Lent[k] + f.Borrowed[k]
}

// Figures returns every count under one lock, so a report made of them
// (the member's Lease load) is of one moment.
func (g *Gate) Figures() Figures {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Figures{Alloc: g.alloc, InUse: g.inUse, Lent: g.lent, Borrowed: g.borrowed}
}
