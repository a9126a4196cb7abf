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
	// InUse is the member's reported use: every session it serves,
	// including those admitted on borrowed licenses.
	InUse int
	// Lent and Borrowed are the member's loans (loan.go) as the reports
	// show them: Lent what it lent to peers (the most its own report or its
	// borrowers' reports show), Borrowed what it reports holding from
	// lenders that are still members. A license on loan is held by its
	// lender, so it counts in the lender's reserve and not the borrower's.
	Lent, Borrowed int
	// Ready members admit sessions; an unready one admits nothing new, so
	// lowering its allocation is never held back (Damp).
	Ready bool
}

// free is what the member's allocation may be set to without taking
// anything from the others: what it may be admitting under already, and,
// without loans, its use (a member lowered below its sessions keeps them).
// With loans its use is not all its own, and the reports it is judged by
// (its own and its peers', each of another moment) may disagree about who
// holds a loan, so nothing beyond its allocation is free.
func (h Held) free() int {
	if h.Lent > 0 || h.Borrowed > 0 {
		return max(h.Written, h.Applied)
	}
	return max(h.Written, h.Applied, h.InUse)
}

// own is what the member holds of its own allocation by its reports: its
// sessions not on borrowed licenses, and its loans out.
func (h Held) own() int { return h.InUse - h.Borrowed + h.Lent }

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
// Rules, with reserve(m) = max(Written, Applied, InUse − Borrowed + Lent) —
// every allocation m may still be admitting under, and what it holds of its
// own (a loan is counted once, at its lender: counting it at both ends too
// kept the reserves above the total, so a license freed while loans were out
// was never handed on) — and free(m) what it can be given at no one's
// expense (see Held.free):
//   - A decrease is written only if the member reports it applied the
//     current Written one (or reports nothing, which older members do);
//     otherwise Written stays. After a decrease only increases follow until
//     the member confirms, so what it may hold is never above reserve(m).
//   - Increases beyond free(m) are granted from total − Σ reserve, in
//     proportion to what each asks (largest remainder) — never "free" up to
//     a borrower's use, which counts sessions on borrowed licenses: raised
//     to it, it would admit on its loans a second time (the operator wrote
//     6 on a license of 5 that way). So the sum over members of
//     max(written, reserve) never exceeds total.
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
		r := max(h.free(), h.own(), 0)
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
		switch free := h.free(); {
		case want < h.Written && !acked:
			out[h.Member] = h.Written
		case want > free:
			askers = append(askers, h.Member)
			asks = append(asks, want-free)
			out[h.Member] = free // raised below as far as avail allows
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
