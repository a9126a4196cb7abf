// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// Unlimited is the allocation of a cluster without a ConnectionLicense.
const Unlimited = -1

// ErrExhausted matches every *ExhaustedError with errors.Is.
var ErrExhausted = errors.New("connection license exhausted")

// ExhaustedError is the refusal a member reports to a client, naming the
// license that ran out.
type ExhaustedError struct {
	Kind       sessionkind.Kind
	Allocation int
	InUse      int
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("no %s connection license free on this member (allocation %d, in use %d)", e.Kind, e.Allocation, e.InUse)
}

func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// Gate admits sessions on one member within the allocation the operator gave
// it. It is safe for concurrent use; a check and its increment happen under
// one lock, so concurrent logins can never overshoot the allocation.
//
// The zero Gate has allocation 0 for both kinds and refuses everything: a
// member that has not yet learnt its allocation must not admit sessions that
// could oversubscribe the cluster. Use NewGate or SetAllocation(Unlimited,
// Unlimited) for a cluster without licenses.
type Gate struct {
	mu    sync.Mutex
	alloc [sessionkind.N]int
	inUse [sessionkind.N]int
	// Loans between members (loan.go): lent out of alloc to peers, borrowed
	// from peers on top of it. A member admits up to alloc − lent + borrowed.
	lent     [sessionkind.N]int
	borrowed [sessionkind.N]int
}

// NewGate returns a Gate with the given allocations (negative: unlimited).
func NewGate(client, bridge int) *Gate {
	g := &Gate{}
	g.SetAllocation(client, bridge)
	return g
}

// SetAllocation replaces both allocations at once; any negative value means
// unlimited. Lowering an allocation below what is in use ends no session: the
// member just refuses new ones until enough have been released.
func (g *Gate) SetAllocation(client, bridge int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.alloc[sessionkind.Client] = max(client, Unlimited)
	g.alloc[sessionkind.Bridge] = max(bridge, Unlimited)
}

// Allocation returns the current allocations (Unlimited for none).
func (g *Gate) Allocation() (client, bridge int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.alloc[sessionkind.Client], g.alloc[sessionkind.Bridge]
}

// TryAcquire takes one license of kind k if the allocation has room. An
// unknown kind is refused.
func (g *Gate) TryAcquire(k sessionkind.Kind) bool {
	return g.Acquire(k) == nil
}

// Acquire is TryAcquire returning the refusal as an *ExhaustedError.
func (g *Gate) Acquire(k sessionkind.Kind) error {
	if !k.Valid() {
		return fmt.Errorf("license: unknown license kind %v", k)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.alloc[k]; a != Unlimited && g.inUse[k] >= g.effectiveLocked(k) {
		return &ExhaustedError{Kind: k, Allocation: g.effectiveLocked(k), InUse: g.inUse[k]}
	}
	g.inUse[k]++
	return nil
}

// Release returns one license of kind k taken by TryAcquire or Acquire. A
// Release with nothing in use is ignored rather than creating capacity that
// was never granted.
func (g *Gate) Release(k sessionkind.Kind) {
	if !k.Valid() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inUse[k] > 0 {
		g.inUse[k]--
	}
}

// InUse returns the licenses currently held, which the member reports so the
// operator can rebalance.
func (g *Gate) InUse() (client, bridge int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inUse[sessionkind.Client], g.inUse[sessionkind.Bridge]
}
