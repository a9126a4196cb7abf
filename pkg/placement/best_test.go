// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import "testing"

func TestBestMember(t *testing.T) {
	m := func(name string, ready bool, weight, sessions, max int) Member {
		return Member{Name: name, Ready: ready, Weight: weight, Sessions: sessions, MaxSessions: max}
	}
	tests := []struct {
		name      string
		members   []Member
		instances map[string]int
		want      string
		wantOK    bool
	}{
		{
			name:    "highest point wins",
			members: []Member{m("a", true, 100, 60, 100), m("b", true, 100, 10, 100), m("c", true, 100, 30, 100)},
			want:    "b", wantOK: true,
		},
		{
			name:    "weight 200 beats weight 100 at equal sessions",
			members: []Member{m("a", true, 100, 40, 100), m("b", true, 200, 40, 100)},
			want:    "b", wantOK: true,
		},
		{
			name:      "point tie goes to fewer hub instances",
			members:   []Member{m("a", true, 100, 10, 100), m("b", true, 100, 10, 100)},
			instances: map[string]int{"a": 3, "b": 2},
			want:      "b", wantOK: true,
		},
		{
			name:      "instance tie-break is per unit of weight",
			members:   []Member{m("a", true, 100, 0, 100), m("b", true, 200, 0, 100)},
			instances: map[string]int{"a": 2, "b": 3},
			want:      "b", wantOK: true,
		},
		{
			name:      "full tie goes to name",
			members:   []Member{m("c", true, 100, 10, 100), m("b", true, 100, 10, 100)},
			instances: map[string]int{"b": 1, "c": 1},
			want:      "b", wantOK: true,
		},
		{
			name:    "unready skipped even when idlest",
			members: []Member{m("a", false, 100, 0, 100), m("b", true, 100, 90, 100)},
			want:    "b", wantOK: true,
		},
		{
			name:    "full by max skipped",
			members: []Member{m("a", true, 200, 100, 100), m("b", true, 100, 99, 100)},
			want:    "b", wantOK: true,
		},
		{
			name:    "full by point skipped (weight 50 hits zero at half max)",
			members: []Member{m("a", true, 50, 50, 100), m("b", true, 100, 99, 100)},
			want:    "b", wantOK: true,
		},
		{
			name:    "no capacity configured is never chosen",
			members: []Member{m("a", true, 100, 0, 0)},
			wantOK:  false,
		},
		{
			name:    "none eligible",
			members: []Member{m("a", false, 100, 0, 100), m("b", true, 100, 100, 100)},
			wantOK:  false,
		},
		{name: "no members", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := BestMember(tt.members, tt.instances)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("BestMember = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// A member handing out new sessions of a static hub, one at a time, spreads
// them by weight as SoftEther does: weight 200 ends with twice the sessions.
func TestBestMemberSpreadsSessionsByWeight(t *testing.T) {
	members := []Member{
		{Name: "a", Ready: true, Weight: 100, MaxSessions: 1000},
		{Name: "b", Ready: true, Weight: 200, MaxSessions: 1000},
		{Name: "c", Ready: true, Weight: 100, MaxSessions: 1000},
	}
	for range 400 {
		name, ok := BestMember(members, nil)
		if !ok {
			t.Fatal("no member while all have room")
		}
		for i := range members {
			if members[i].Name == name {
				members[i].Sessions++
			}
		}
	}
	if got := []int{members[0].Sessions, members[1].Sessions, members[2].Sessions}; got[0] != 100 || got[1] != 200 || got[2] != 100 {
		t.Errorf("sessions = %v, want [100 200 100]", got)
	}
}
