// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import "testing"

func sc(name string, ready bool, sessions, free int) SessionCandidate {
	return SessionCandidate{Member: Member{Name: name, Ready: ready, Weight: 100, Sessions: sessions, MaxSessions: 4096}, Free: free}
}

func TestSessionMember(t *testing.T) {
	one := Point(0, 100, 4096) - Point(1, 100, 4096) // points one session is worth
	cases := []struct {
		name   string
		entry  string
		cands  []SessionCandidate
		margin int
		want   string
		ok     bool
	}{
		{"balanced stays on the entry", "a", []SessionCandidate{sc("a", true, 10, -1), sc("b", true, 9, -1), sc("c", true, 10, -1)}, StayMargin, "a", true},
		{"within the margin stays", "a", []SessionCandidate{sc("a", true, 40, -1), sc("b", true, 0, -1)}, 40 * one, "a", true},
		{"beyond the margin moves to the best point", "a", []SessionCandidate{sc("a", true, 200, -1), sc("b", true, 50, -1), sc("c", true, 10, -1)}, StayMargin, "c", true},
		{"margin zero is SoftEther's rule", "a", []SessionCandidate{sc("a", true, 2, -1), sc("b", true, 1, -1)}, 0, "b", true},
		{"entry without license goes where one is free", "a", []SessionCandidate{sc("a", true, 1, 0), sc("b", true, 5, 0), sc("c", true, 9, 3)}, StayMargin, "c", true},
		{"nobody has a license", "a", []SessionCandidate{sc("a", true, 1, 0), sc("b", true, 5, 0)}, StayMargin, "", false},
		{"unready entry moves", "a", []SessionCandidate{sc("a", false, 0, -1), sc("b", true, 100, -1)}, StayMargin, "b", true},
		{"unready peers are never chosen", "a", []SessionCandidate{sc("a", true, 4000, -1), sc("b", false, 0, -1)}, StayMargin, "a", true},
		{"full entry moves", "a", []SessionCandidate{sc("a", true, 4096, -1), sc("b", true, 4000, -1)}, StayMargin, "b", true},
		{"entry unknown to the list picks the best", "z", []SessionCandidate{sc("a", true, 3, -1), sc("b", true, 1, -1)}, StayMargin, "b", true},
		{"ties go to the smaller name", "z", []SessionCandidate{sc("b", true, 1, -1), sc("a", true, 1, -1)}, StayMargin, "a", true},
	}
	for _, c := range cases {
		got, ok := SessionMember(c.entry, c.cands, c.margin)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: SessionMember = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// A weight-200 member takes twice the sessions before it is passed over.
func TestSessionMemberWeights(t *testing.T) {
	heavy := SessionCandidate{Member: Member{Name: "heavy", Ready: true, Weight: 200, Sessions: 200, MaxSessions: 4096}, Free: -1}
	light := SessionCandidate{Member: Member{Name: "light", Ready: true, Weight: 100, Sessions: 100, MaxSessions: 4096}, Free: -1}
	if got, _ := SessionMember("light", []SessionCandidate{heavy, light}, 0); got != "light" {
		t.Fatalf("equal weighted load: got %q, want the entry", got)
	}
	light.Sessions = 101
	if got, _ := SessionMember("light", []SessionCandidate{heavy, light}, 0); got != "heavy" {
		t.Fatalf("light member one session busier by weight: got %q, want heavy", got)
	}
}
