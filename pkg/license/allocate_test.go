// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestAllocate(t *testing.T) {
	u := func(name string, ready bool, inUse int) Usage { return Usage{Member: name, Ready: ready, InUse: inUse} }
	tests := []struct {
		name     string
		total    int
		usage    []Usage
		headroom int
		want     map[string]int
	}{
		{
			name:  "unlimited",
			total: -1,
			usage: []Usage{u("a", true, 5), u("b", false, 0)},
			want:  map[string]int{"a": -1, "b": -1},
		},
		{
			name:  "no members",
			total: 10,
			want:  map[string]int{},
		},
		{
			name:  "zero licenses",
			total: 0,
			usage: []Usage{u("a", true, 0), u("b", true, 0)},
			want:  map[string]int{"a": 0, "b": 0},
		},
		{
			name:  "exactly used up: everyone keeps what it uses, nothing more",
			total: 12,
			usage: []Usage{u("a", true, 8), u("b", true, 4)},
			want:  map[string]int{"a": 8, "b": 4},
		},
		{
			// 10·8/12 = 6.67, 10·4/12 = 3.33: the spare unit goes to a.
			name:  "oversubscribed: total split by use, capped below use",
			total: 10,
			usage: []Usage{u("a", true, 8), u("b", false, 4), u("c", true, 0)},
			want:  map[string]int{"a": 7, "b": 3, "c": 0},
		},
		{
			// spare 55; floor 2 each for a, b, c; rest 49 by weights
			// 40+3·30=130, 40+3·10=70, 40 (of 240): 26.54, 14.29, 8.17.
			name:     "spare: floor, then half even and half by use; unready keeps its use",
			total:    100,
			usage:    []Usage{u("a", true, 30), u("b", true, 10), u("c", true, 0), u("d", false, 5)},
			headroom: 2,
			want:     map[string]int{"a": 59, "b": 26, "c": 10, "d": 5},
		},
		{
			name:     "idle cluster splits evenly, remainder by name",
			total:    10,
			usage:    []Usage{u("c", true, 0), u("a", true, 0), u("b", true, 0)},
			headroom: 1,
			want:     map[string]int{"a": 4, "b": 3, "c": 3},
		},
		{
			name:     "spare smaller than headroom for all is split evenly",
			total:    13,
			usage:    []Usage{u("a", true, 5), u("b", true, 5), u("c", true, 0)},
			headroom: 3,
			want:     map[string]int{"a": 6, "b": 6, "c": 1},
		},
		{
			name:  "headroom 0 still gives every ready member one free license",
			total: 103,
			usage: []Usage{u("a", true, 100), u("b", true, 0), u("c", true, 0)},
			want:  map[string]int{"a": 101, "b": 1, "c": 1},
		},
		{
			name:  "no ready member: spare is kept back",
			total: 10,
			usage: []Usage{u("a", false, 3)},
			want:  map[string]int{"a": 3},
		},
		{
			name:  "duplicate names merge",
			total: 6,
			usage: []Usage{u("a", false, 2), u("a", true, 3)},
			want:  map[string]int{"a": 6},
		},
		{
			name:  "negative use counts as none",
			total: 2,
			usage: []Usage{u("a", true, -4), u("b", true, 0)},
			want:  map[string]int{"a": 1, "b": 1},
		},
		{
			// a uses 2^61−1; spare 3·2^61; floor 1 each; rest 3·2^61−2 split
			// 3:1 is 9·2^59−1.5 and 3·2^59−0.5, the tied unit going to a.
			name:  "huge totals do not overflow",
			total: math.MaxInt,
			usage: []Usage{u("a", true, math.MaxInt/4), u("b", true, 0)},
			want:  map[string]int{"a": math.MaxInt/4 + 1 + 9<<59 - 1, "b": 1 + 3<<59 - 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Allocate(tt.total, tt.usage, tt.headroom)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Allocate(%d, %v, %d) = %v, want %v", tt.total, tt.usage, tt.headroom, got, tt.want)
			}
		})
	}
}

const propertySeed = 20261122

func randomUsage(r *rand.Rand) []Usage {
	var us []Usage
	for i := range r.IntN(30) {
		us = append(us, Usage{Member: fmt.Sprintf("m%02d", i), Ready: r.IntN(100) < 80, InUse: r.IntN(51)})
	}
	return us
}

func TestAllocateProperties(t *testing.T) {
	for i := range 2000 {
		r := rand.New(rand.NewPCG(propertySeed, uint64(i)))
		usage := randomUsage(r)
		total := r.IntN(800) - 1
		headroom := r.IntN(11)
		got := Allocate(total, usage, headroom)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("iteration %d: Allocate(%d, %+v, %d) = %v: %s", i, total, usage, headroom, got, fmt.Sprintf(format, args...))
		}
		if len(got) != len(usage) {
			fail("%d allocations for %d members", len(got), len(usage))
		}
		if total < 0 {
			for m, a := range got {
				if a != -1 {
					fail("%s got %d under an unlimited license", m, a)
				}
			}
			continue
		}
		sum, inUse, ready := 0, 0, 0
		for _, u := range usage {
			sum += got[u.Member]
			inUse += u.InUse
			if u.Ready {
				ready++
			}
		}
		if sum > total {
			fail("allocations add up to %d > total %d", sum, total)
		}
		spare := total - inUse
		if spare < 0 && sum != total {
			fail("oversubscribed cluster left %d licenses unallocated", total-sum)
		}
		if spare >= 0 && ready > 0 && sum != total {
			fail("%d licenses left unallocated while %d members could use them", total-sum, ready)
		}
		floor := 0
		if ready > 0 && spare > 0 {
			floor = min(max(headroom, 1), spare/ready)
		}
		for _, u := range usage {
			a := got[u.Member]
			switch {
			case spare < 0 && a > u.InUse:
				fail("%s allocated %d beyond its use %d while oversubscribed", u.Member, a, u.InUse)
			case spare >= 0 && a < u.InUse:
				fail("%s allocated %d below its use %d", u.Member, a, u.InUse)
			case spare >= 0 && !u.Ready && a != u.InUse:
				fail("unready %s allocated %d, use %d", u.Member, a, u.InUse)
			case u.Ready && spare >= ready && a <= u.InUse:
				fail("ready %s has no free license (%d of %d) while spare %d ≥ %d ready members", u.Member, a, u.InUse, spare, ready)
			case u.Ready && spare > 0 && a-u.InUse < floor:
				fail("ready %s has %d free, below the floor %d", u.Member, a-u.InUse, floor)
			}
			// A busier member never gets less slack than an idler one,
			// beyond one unit of rounding.
			for _, v := range usage {
				if spare > 0 && u.Ready && v.Ready && u.InUse > v.InUse && a-u.InUse < got[v.Member]-v.InUse-1 {
					fail("%s (use %d) has %d free, %s (use %d) has %d", u.Member, u.InUse, a-u.InUse, v.Member, v.InUse, got[v.Member]-v.InUse)
				}
			}
		}
		shuffled := append([]Usage(nil), usage...)
		r.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if again := Allocate(total, shuffled, headroom); !reflect.DeepEqual(again, got) {
			fail("input order changed the result to %v", again)
		}
	}
}
