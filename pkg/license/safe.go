// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

// Held is what the operator knows of one member's hold on one license kind
// when it rebalances.
type Held struct {
	Member string
	// Written is the allocation in the last status the operator wrote for
	// the member (0 when none was written yet).
	Written int
	// Applied is the allocation the member reports its Gate applies, from
	// its last Lease renewal; negative when it reports none (unlimited, or
	// a member that does not report it).
	Applied int
	// InUse is the member's reported use.
	InUse int
}

// Safe turns the ideal allocations (from Allocate) into the ones that can be
// written now without any moment of oversubscription, and is what the
// operator writes.
//
// Why: a member admits up to the allocation it has applied, and the operator
// learns what it applied and uses only at its next Lease renewal. Lowering
// member A's allocation and giving the difference to member B in the same
// pass lets B admit before A has seen its lower figure: both admit, and the
// cluster is over its license (seen end to end: 3 clients on a license of 2).
// So licenses move in two steps: a decrease is written first; what it frees
// is handed to others only once the member reports it applied it.
//
// Rules, with reserve(m) = max(Written, Applied, InUse) — every allocation
// m may still be admitting under:
//   - A decrease is written only if the member reports it applied the
//     current Written one (or reports nothing, which older members do);
//     otherwise Written stays. After a decrease only increases follow until
//     the member confirms, so what it may hold is never above reserve(m).
//   - Increases are granted from total − Σ reserve, in proportion to what
//     each asks beyond its reserve (largest remainder), so the sum over
//     members of max(written, reserve) never exceeds total.
//
// With steady usage the ideal stays put, so this converges in at most two
// Lease renewals and then writes nothing. A negative total (unlimited) and
// members missing from held pass through unchanged.
func Safe(total int, ideal map[string]int, held []Held) map[string]int {
	out := make(map[string]int, len(ideal))
	for m, n := range ideal {
		out[m] = n
	}
	if total < 0 {
		return out
	}
	reserve := make(map[string]int, len(held))
	avail := total
	for _, h := range held {
		r := max(h.Written, h.Applied, h.InUse, 0)
		reserve[h.Member] = r
		avail -= r
	}
	var askers []string
	var asks []int
	for _, h := range held {
		want, ok := ideal[h.Member]
		if !ok {
			continue
		}
		acked := h.Applied < 0 || h.Applied == h.Written
		switch {
		case want < h.Written && !acked:
			out[h.Member] = h.Written
		case want > reserve[h.Member]:
			askers = append(askers, h.Member)
			asks = append(asks, want-reserve[h.Member])
			out[h.Member] = max(h.Written, reserve[h.Member]) // raised below as far as avail allows
		}
	}
	if len(askers) == 0 {
		return out
	}
	asked := 0
	for _, a := range asks {
		asked += a
	}
	if avail >= asked {
		for i, m := range askers {
			out[m] += asks[i]
		}
		return out
	}
	if avail <= 0 {
		return out
	}
	for i, n := range largestRemainder(avail, asks) {
		out[askers[i]] += n
	}
	return out
}
