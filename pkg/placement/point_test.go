// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import (
	"math"
	"math/big"
	"testing"
)

func TestPoint(t *testing.T) {
	tests := []struct {
		name                      string
		sessions, weight, maxSess int
		want                      int
	}{
		{"idle", 0, 100, 100, 100000},
		{"half full", 50, 100, 100, 50000},
		{"full", 100, 100, 100, 0},
		{"over full", 150, 100, 100, 0},
		{"weight 200 counts sessions half", 50, 200, 100, 75000},
		{"weight 200 same point at twice the sessions", 100, 200, 200, 75000},
		{"weight 200 reaches zero at twice M", 200, 200, 100, 0},
		{"weight 50 reaches zero at half M", 50, 50, 100, 0},
		{"weight 50", 10, 50, 100, 80000},
		{"truncates", 1, 100, 3, 66666},
		{"truncates with odd weight", 1, 300, 7, 95238},
		{"weight 0 is default", 50, 0, 100, 50000},
		{"negative weight is default", 50, -5, 100, 50000},
		{"max 0 hosts nothing", 0, 100, 0, 0},
		{"negative max hosts nothing", 0, 100, -1, 0},
		{"negative sessions count as none", -3, 100, 100, 100000},
		{"huge inputs do not overflow", math.MaxInt, math.MaxInt, math.MaxInt, 0},
		{"huge sessions", math.MaxInt, 100, 100, 0},
		{"huge capacity", 1, math.MaxInt, math.MaxInt, 99999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Point(tt.sessions, tt.weight, tt.maxSess); got != tt.want {
				t.Errorf("Point(%d, %d, %d) = %d, want %d", tt.sessions, tt.weight, tt.maxSess, got, tt.want)
			}
		})
	}
}

// softEtherPoint is SiCalcPoint from SoftEther's Server.c, in float64 as
// SoftEther computes it.
func softEtherPoint(num, weight, maxSessions int) int {
	if weight == 0 {
		weight = 100
	}
	m := float64(maxSessions)
	return int(uint32((m - math.Min(float64(num)*100.0/float64(weight), m)) * 100000 / m))
}

// exactPoint is the formula in exact rationals, an oracle independent of
// Point's integer tricks. It also reports whether the value is an integer.
func exactPoint(n, w, m int) (int, bool) {
	r := new(big.Rat).SetFrac64(int64(n)*100, int64(w))
	mr := new(big.Rat).SetInt64(int64(m))
	if r.Cmp(mr) > 0 {
		r = mr
	}
	r.Sub(mr, r).Mul(r, big.NewRat(MaxPoint, int64(m)))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	return int(q.Int64()), r.IsInt()
}

// Point must be the exact floor of the formula, and so equal SoftEther's
// double arithmetic everywhere except where the double rounds an exact
// integer down by one.
func TestPointMatchesSoftEther(t *testing.T) {
	for _, m := range []int{1, 3, 7, 100, 1000, 4096, 100000} {
		for _, w := range []int{1, 7, 50, 100, 150, 200, 333, 1000} {
			for n := 0; n <= 3000; n++ {
				got := Point(n, w, m)
				exact, isInt := exactPoint(n, w, m)
				if got != exact {
					t.Fatalf("Point(%d, %d, %d) = %d, exact floor is %d", n, w, m, got, exact)
				}
				se := softEtherPoint(n, w, m)
				if se != got && !(isInt && se == got-1) {
					t.Fatalf("Point(%d, %d, %d) = %d, SoftEther gives %d", n, w, m, got, se)
				}
			}
		}
	}
}

func TestPointMonotone(t *testing.T) {
	for _, w := range []int{50, 100, 200} {
		prev := Point(0, w, 500)
		for n := 1; n <= 1200; n++ {
			p := Point(n, w, 500)
			if p > prev {
				t.Fatalf("weight %d: point rose from %d to %d at %d sessions", w, prev, p, n)
			}
			prev = p
		}
	}
}
