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
