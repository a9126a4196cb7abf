// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import "time"

// Damp holds back, for delay, the decreases of a ready member's allocation
// that the ideal (Allocate) asks for only to follow usage, and returns the
// ideal to hand to Safe, with how long until the next held decrease is due
// (0 when none is held).
//
// Why: moving a free license from one member to another takes two steps
// (Safe), and between them — until the lowered member's next Lease renewal
// and the operator's next pass — nobody can admit on it, not even by
// borrowing (loans come out of what a member holds). Usage moving during a
// burst of logins made the operator move licenses in the middle of the
// burst, and a client was refused while a license was in transit (seen end
// to end: 4 of 5 admitted). Loans serve a burst at once wherever it lands;
// the allocations follow usage once it has stayed where it is for delay.
//
// Not held back: any decrease while the written allocations add up to more
// than total (the license was reduced: members must admit less now), and
// decreases of unready members (they admit nothing new, and their licenses
// are wanted where their sessions fail over to).
//
// since keeps, per member, when its ideal first fell below its written
// allocation; Damp updates it (the caller keeps it between passes; a fresh
// map after an operator restart only delays a move by delay once more).
func Damp(total int, ideal map[string]int, held []Held, since map[string]time.Time, now time.Time, delay time.Duration) (map[string]int, time.Duration) {
	out := make(map[string]int, len(ideal))
	for m, n := range ideal {
		out[m] = n
	}
	written := 0
	for _, h := range held {
		written += max(h.Written, 0)
	}
	if total < 0 || written > total {
		clear(since)
		return out, 0
	}
	var next time.Duration
	seen := make(map[string]bool, len(held))
	for _, h := range held {
		seen[h.Member] = true
		want, ok := ideal[h.Member]
		if !ok || want >= h.Written || !h.Ready {
			delete(since, h.Member)
			continue
		}
		t, ok := since[h.Member]
		if !ok {
			t = now
			since[h.Member] = t
		}
		if left := t.Add(delay).Sub(now); left > 0 {
			out[h.Member] = h.Written
			if next == 0 || left < next {
				next = left
			}
		}
	}
	for m := range since {
		if !seen[m] {
			delete(since, m)
		}
	}
	return out, next
}
