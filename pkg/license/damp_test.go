// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package license

import (
	"reflect"
	"testing"
	"time"
)

func TestDamp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const delay = 5 * time.Second
	held := []Held{
		{Member: "a", Written: 2, Applied: 2, Ready: true},
		{Member: "b", Written: 2, Applied: 2, Ready: true},
		{Member: "c", Written: 1, Applied: 1, Ready: true},
	}
	ideal := map[string]int{"a": 3, "b": 1, "c": 1}
	since := map[string]time.Time{}

	// Usage moved: b's decrease waits, a's increase passes (Safe caps it).
	got, next := Damp(5, ideal, held, since, t0, delay)
	if want := map[string]int{"a": 3, "b": 2, "c": 1}; !reflect.DeepEqual(got, want) || next != delay {
		t.Fatalf("first pass: got %v, next %v; want %v, next %v", got, next, want, delay)
	}
	// Still within the delay: still held, due the rest of it later.
	got, next = Damp(5, ideal, held, since, t0.Add(2*time.Second), delay)
	if got["b"] != 2 || next != 3*time.Second {
		t.Fatalf("within the delay: got %v, next %v; want b held 3s more", got, next)
	}
	// The usage stayed: the decrease goes through.
	got, next = Damp(5, ideal, held, since, t0.Add(delay), delay)
	if got["b"] != 1 || next != 0 {
		t.Fatalf("after the delay: got %v, next %v; want b lowered to 1", got, next)
	}
	// The usage moved back (ideal no longer lower): the clock starts again
	// next time.
	Damp(5, map[string]int{"a": 2, "b": 2, "c": 1}, held, since, t0.Add(6*time.Second), delay)
	if _, ok := since["b"]; ok {
		t.Fatalf("since kept b after its ideal came back up: %v", since)
	}
	got, _ = Damp(5, ideal, held, since, t0.Add(7*time.Second), delay)
	if got["b"] != 2 {
		t.Fatalf("a new drop is held again: got %v", got)
	}

	// The license was reduced below what is written: no waiting.
	got, next = Damp(4, map[string]int{"a": 2, "b": 1, "c": 1}, held, map[string]time.Time{}, t0, delay)
	if got["b"] != 1 || next != 0 {
		t.Fatalf("license reduced: got %v, next %v; want b lowered at once", got, next)
	}
	// An unready member is lowered at once.
	unready := []Held{{Member: "a", Written: 2, Applied: 2, Ready: true}, {Member: "b", Written: 3, Applied: 3}}
	got, _ = Damp(5, map[string]int{"a": 5, "b": 0}, unready, map[string]time.Time{}, t0, delay)
	if got["b"] != 0 {
		t.Fatalf("unready member: got %v, want b lowered at once", got)
	}
	// Unlimited passes through.
	got, _ = Damp(-1, map[string]int{"a": -1}, []Held{{Member: "a", Written: -1, Ready: true}}, map[string]time.Time{}, t0, delay)
	if got["a"] != -1 {
		t.Fatalf("unlimited: got %v", got)
	}
	// Members gone from held are forgotten.
	s := map[string]time.Time{"gone": t0}
	Damp(5, ideal, held, s, t0, delay)
	if _, ok := s["gone"]; ok {
		t.Fatalf("since kept a member no longer in the cluster: %v", s)
	}
}
