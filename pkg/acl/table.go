// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"slices"
)

// maxWords is the bitmap size: one bit per rule position in a matcher.
const maxWords = MaxRules / 64

// set is a bitmap of rule positions; bit i is the matcher's i-th rule.
type set [maxWords]uint64

func (s *set) and(o *set) {
	s[0] &= o[0]
	s[1] &= o[1]
	s[2] &= o[2]
	s[3] &= o[3]
}

func (s *set) andNot(o *set) {
	s[0] &^= o[0]
	s[1] &^= o[1]
	s[2] &^= o[2]
	s[3] &^= o[3]
}

func (s *set) meets(o *set) bool {
	return s[0]&o[0]|s[1]&o[1]|s[2]&o[2]|s[3]&o[3] != 0
}

func (s *set) empty() bool { return s[0]|s[1]|s[2]|s[3] == 0 }

func (s *set) add(i int) { s[i>>6] |= 1 << (uint(i) & 63) }

// span is one rule's inclusive range of a field's values.
type span struct {
	lo, hi uint64
	bit    int
}

// table maps a field's value to the set of rules that match it: starts cuts the
// value space into intervals (starts[0] is 0), sets[i] holds for values from
// starts[i] up to the next start. Rules that do not test the field are in every set.
type table struct {
	starts []uint64
	sets   []set
}

func buildTable(spans []span, wild set) table {
	starts := []uint64{0}
	for _, s := range spans {
		starts = append(starts, s.lo, s.hi+1) // keys are at most 32 bits: no overflow
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	t := table{starts: starts, sets: make([]set, len(starts))}
	for i, st := range starts {
		t.sets[i] = wild
		for _, s := range spans {
			if s.lo <= st && st <= s.hi {
				t.sets[i].add(s.bit)
			}
		}
	}
	return t
}

func (t *table) lookup(k uint64) *set {
	s := t.starts
	lo, hi := 0, len(s)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if s[mid] <= k {
			lo = mid
		} else {
			hi = mid
		}
	}
	return &t.sets[lo]
}

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) lessEq(b u128) bool { return !b.less(a) }

func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		if a.hi == ^uint64(0) {
			return u128{}, false
		}
		return u128{a.hi + 1, 0}, true
	}
	return u128{a.hi, a.lo + 1}, true
}

type span128 struct {
	lo, hi u128
	bit    int
}

// table128 is table for IPv6 addresses.
type table128 struct {
	starts []u128
	sets   []set
}

func buildTable128(spans []span128, wild set) table128 {
	starts := []u128{{}}
	for _, s := range spans {
		starts = append(starts, s.lo)
		if n, ok := s.hi.next(); ok {
			starts = append(starts, n)
		}
	}
	slices.SortFunc(starts, func(a, b u128) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	starts = slices.Compact(starts)
	t := table128{starts: starts, sets: make([]set, len(starts))}
	for i, st := range starts {
		t.sets[i] = wild
		for _, s := range spans {
			if s.lo.lessEq(st) && st.lessEq(s.hi) {
				t.sets[i].add(s.bit)
			}
		}
	}
	return t
}

func (t *table128) lookup(k u128) *set {
	s := t.starts
	lo, hi := 0, len(s)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if s[mid].lessEq(k) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return &t.sets[lo]
}

// macTable maps a MAC address to the rules whose masked address it matches. Masks
// are arbitrary bits, not prefixes, so they do not cut the address space into
// intervals; but a list uses few distinct masks (exact, an OUI, the group bit), so
// rules are grouped by mask and each group is a sorted list of masked addresses.
type macTable struct {
	wild   set
	groups []macGroup
}

type macGroup struct {
	mask uint64
	vals []uint64 // sorted, distinct
	sets []set    // sets[i]: rules of this mask whose address is vals[i]
}

type macSpan struct {
	mask, val uint64
	bit       int
}

func buildMACTable(spans []macSpan, wild set) macTable {
	t := macTable{wild: wild}
	for _, s := range spans {
		gi := slices.IndexFunc(t.groups, func(g macGroup) bool { return g.mask == s.mask })
		if gi < 0 {
			t.groups = append(t.groups, macGroup{mask: s.mask})
			gi = len(t.groups) - 1
		}
		g := &t.groups[gi]
		i, found := slices.BinarySearch(g.vals, s.val)
		if !found {
			g.vals = slices.Insert(g.vals, i, s.val)
			g.sets = slices.Insert(g.sets, i, set{})
		}
		g.sets[i].add(s.bit)
	}
	return t
}

// narrow removes from cand the rules that test this address and do not match it.
func (t *macTable) narrow(a uint64, cand *set) {
	m := t.wild
	for gi := range t.groups {
		g := &t.groups[gi]
		k := a & g.mask
		lo, hi := 0, len(g.vals)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if g.vals[mid] < k {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < len(g.vals) && g.vals[lo] == k {
			s := &g.sets[lo]
			m[0] |= s[0]
			m[1] |= s[1]
			m[2] |= s[2]
			m[3] |= s[3]
		}
	}
	cand.and(&m)
}
