// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package license keeps a cluster's connection licenses from being
// oversubscribed without refusing sessions the cluster could still take.
//
// SoftEther's controller totals the members' counts every 10 s and refuses
// logins at the registered count, so a burst between two polls overshoots
// the license. hubfleet turns the total into per-member allocations instead
// (Allocate, run by the operator): the allocations never add up to more than
// the total, and each member admits sessions only within its own allocation
// (Gate), with no round trip to anyone. The operator re-runs Allocate as
// usage moves, so a member short of allocation gets more within one
// rebalance period.
package license

import (
	"cmp"
	"math/bits"
	"slices"
)

// Usage is one member's use of one license kind.
type Usage struct {
	Member string
	Ready  bool
	InUse  int
}

// Allocate splits total licenses of one kind between members. A negative
// total means unlimited and gives every member -1.
//
// Rules, in order:
//
//   - The allocations never add up to more than total.
//   - Nobody loses what it uses: each member gets at least its InUse,
//     unready members exactly that, since they admit nothing new.
//   - If the members already use more than total (the license was reduced,
//     or counts raced), the total is split in proportion to InUse, so every
//     member is capped below its use and refuses new sessions until enough
//     end; existing sessions are not cut. The sum is then exactly total.
//   - Otherwise the spare (total − ΣInUse) all goes to ready members:
//     first up to headroom each (at least 1; split evenly when the spare is
//     too small for that), then the rest half evenly and half in proportion
//     to each ready member's InUse.
//
// Why this split: a member can admit only within its own allocation, so one
// with zero slack refuses its next session until the operator rebalances,
// even if the cluster has licenses left. Purely proportional slack would give
// exactly that to idle members (and a new dynamic hub lands on the idlest
// member), so every ready member gets a floor. Purely even slack would run
// out first on the busiest members, which gain sessions fastest. Half and half
// gives every member at least 1/(2·ready) of the spare and the busy ones
// more. headroom lets the operator size the floor to the session arrivals it
// expects within one rebalance period.
//
// Rounding is by largest remainder with ties to the member that sorts first,
// so the sums are exact and the result depends only on the input. Duplicate
// names are merged: InUse added, ready if any entry is. Negative InUse counts
// as 0.
func Allocate(total int, usage []Usage, headroom int) map[string]int {
	members := merge(usage)
	out := make(map[string]int, len(members))
	if total < 0 {
		for _, u := range members {
			out[u.Member] = -1
		}
		return out
	}

	inUse, readyInUse := 0, 0
	var ready []Usage
	for _, u := range members {
		inUse += u.InUse
		if u.Ready {
			ready = append(ready, u)
			readyInUse += u.InUse
		}
	}

	if inUse >= total {
		weights := make([]int, len(members))
		for i, u := range members {
			weights[i] = u.InUse
		}
		for i, n := range largestRemainder(total, weights) {
			out[members[i].Member] = n
		}
		return out
	}

	for _, u := range members {
		out[u.Member] = u.InUse
	}
	spare := total - inUse
	if len(ready) == 0 {
		return out
	}

	floor := max(headroom, 1)
	if floor > spare/len(ready) {
		for i, n := range largestRemainder(spare, ones(len(ready))) {
			out[ready[i].Member] += n
		}
		return out
	}
	for _, u := range ready {
		out[u.Member] += floor
	}
	rest := spare - floor*len(ready)
	// Weight readyInUse + len(ready)·InUse is half-even plus half-proportional:
	// summed over ready members it is 2·len(ready)·readyInUse, of which each
	// half carries one part.
	weights := ones(len(ready))
	if readyInUse > 0 {
		for i, u := range ready {
			weights[i] = readyInUse + len(ready)*u.InUse
		}
	}
	for i, n := range largestRemainder(rest, weights) {
		out[ready[i].Member] += n
	}
	return out
}

// merge sorts by name and folds duplicate names together.
func merge(usage []Usage) []Usage {
	out := make([]Usage, 0, len(usage))
	for _, u := range usage {
		u.InUse = max(u.InUse, 0)
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Usage) int { return cmp.Compare(a.Member, b.Member) })
	merged := out[:0]
	for _, u := range out {
		if n := len(merged); n > 0 && merged[n-1].Member == u.Member {
			merged[n-1].InUse += u.InUse
			merged[n-1].Ready = merged[n-1].Ready || u.Ready
			continue
		}
		merged = append(merged, u)
	}
	return merged
}

func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// largestRemainder splits amount ≥ 0 in proportion to weights ≥ 0, in whole
// units that add up to amount exactly (or to 0 when all weights are 0).
// Leftover units go to the largest fractional parts, ties to the lower index.
// amount·weight is computed in 128 bits so large license counts cannot
// overflow.
func largestRemainder(amount int, weights []int) []int {
	out := make([]int, len(weights))
	var sum uint64
	for _, w := range weights {
		sum += uint64(w)
	}
	if sum == 0 || amount <= 0 {
		return out
	}
	rem := make([]uint64, len(weights))
	given := 0
	for i, w := range weights {
		hi, lo := bits.Mul64(uint64(amount), uint64(w))
		q, r := bits.Div64(hi, lo, sum) // q ≤ amount, so hi < sum
		out[i], rem[i] = int(q), r
		given += int(q)
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rem[b], rem[a]) })
	for _, i := range order[:amount-given] {
		out[i]++
	}
	return out
}
