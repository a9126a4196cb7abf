// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package placement decides where VirtualHubs run: which member holds each
// dynamic hub, which members hold an instance of each static hub, and which
// member takes a new session. It is pure logic with no Kubernetes client: the
// reconcilers feed it a Snapshot and write back its Decision, so it can be
// tested exhaustively and gives the same answer for the same input.
package placement

import "math/bits"

const (
	// DefaultWeight is SoftEther's default "performance standard ratio".
	DefaultWeight = 100

	// MaxPoint is the point of an idle member (SoftEther's FARM_BASE_POINT).
	MaxPoint = 100000

	// maxInput bounds weight and maxSessions so that M·w and 100·n fit in
	// 64 bits; no real member comes near 2^28 sessions or a weight of 2^28.
	maxInput = 1 << 28
)

// Point is SoftEther's load score of a member, higher meaning more room:
//
//	(M − min(n·100/w, M)) · 100000 / M
//
// with n the sessions on the member across all hubs, w its weight and M its
// maximum sessions. A member with weight 200 reaches a given point with twice
// the sessions of one with weight 100.
//
// SoftEther evaluates the expression in double precision and truncates. Point
// computes the exact floor of the same rational in integers,
// ((M·w − 100·n) · 100000) div (M·w), so the result never depends on
// floating-point rounding; the two agree except where the double rounds an
// exact integer down, and then differ by one point in 100000.
//
// Guards: w ≤ 0 means "not set" and counts as DefaultWeight (SoftEther does
// the same for 0). M ≤ 0 means the member offers no session capacity (like
// SoftEther's controller-only server), so its point is 0 and it is never
// chosen; SoftEther instead silently treats 0 as 1, which would make a
// misconfigured member look idle. n < 0 counts as 0. A weight or maximum
// above 2^28 is clamped to 2^28.
func Point(sessions, weight, maxSessions int) int {
	if maxSessions <= 0 {
		return 0
	}
	if weight <= 0 {
		weight = DefaultWeight
	}
	mw := uint64(clamp(maxSessions)) * uint64(clamp(weight)) // ≤ 2^56
	n := uint64(max(sessions, 0))
	// min(n·100/w, M) = M exactly when 100·n ≥ M·w; checking n ≥ M·w first
	// keeps 100·n below 2^63.
	if n >= mw || 100*n >= mw {
		return 0
	}
	hi, lo := bits.Mul64(mw-100*n, MaxPoint)
	q, _ := bits.Div64(hi, lo, mw) // hi < mw because the quotient is ≤ MaxPoint
	return int(q)
}

func clamp(v int) int {
	switch {
	case v < 0:
		return 0
	case v > maxInput:
		return maxInput
	}
	return v
}

// effectiveWeight is the weight Point uses, so that every other comparison
// in this package scales by the same number.
func effectiveWeight(w int) int {
	if w <= 0 {
		return DefaultWeight
	}
	return clamp(w)
}

// full reports whether a member can take no more sessions: its hard maximum
// is reached, or its weighted load has driven its point to zero (a weight
// below 100 makes that happen before the maximum).
func full(sessions, weight, maxSessions int) bool {
	return sessions >= maxSessions || Point(sessions, weight, maxSessions) == 0
}
