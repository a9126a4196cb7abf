// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func ready(name string, sessions int) Member {
	return Member{Name: name, Ready: true, Weight: 100, Sessions: sessions, MaxSessions: 100}
}

func dyn(key, assigned string, sessions int) Hub {
	return Hub{Key: key, Type: Dynamic, Assigned: assigned, Sessions: sessions}
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name         string
		snap         Snapshot
		wantDynamic  map[string]string
		wantStatic   map[string][]string
		wantMoves    []Move
		wantUnplaced []string
		wantHeld     string // expected HeldReason; "" means not held
	}{
		{
			name:        "new hub goes to the highest point",
			snap:        Snapshot{Members: []Member{ready("a", 50), ready("b", 10), ready("c", 30)}, Hubs: []Hub{dyn("ns/h", "", 0)}},
			wantDynamic: map[string]string{"ns/h": "b"},
			wantMoves:   []Move{{Hub: "ns/h", To: "b", Reason: ReasonInitial}},
		},
		{
			name: "healthy hub stays on a busy member",
			snap: Snapshot{
				Members: []Member{ready("a", 95), ready("b", 0)},
				Hubs:    []Hub{dyn("ns/h", "a", 95)},
			},
			wantDynamic: map[string]string{"ns/h": "a"},
		},
		{
			name: "healthy hub stays on a full member",
			snap: Snapshot{
				Members: []Member{ready("a", 100), ready("b", 0)},
				Hubs:    []Hub{dyn("ns/h", "a", 100)},
			},
			wantDynamic: map[string]string{"ns/h": "a"},
		},
		{
			name: "hubs of a failed member move, biggest to the emptiest",
			snap: Snapshot{
				Members:        []Member{ready("a", 0), ready("b", 20), ready("c", 30)},
				Hubs:           []Hub{dyn("ns/big", "a", 40), dyn("ns/small", "a", 1), dyn("ns/stay", "b", 20)},
				Failed:         []string{"a"},
				MaxUnavailable: 1,
			},
			// big (40) goes first, to b (20 sessions, c has 30); b then
			// carries 60, so small goes to c.
			wantDynamic: map[string]string{"ns/big": "b", "ns/small": "c", "ns/stay": "b"},
			wantMoves: []Move{
				{Hub: "ns/big", From: "a", To: "b", Reason: ReasonMemberFailed},
				{Hub: "ns/small", From: "a", To: "c", Reason: ReasonMemberFailed},
			},
		},
		{
			name: "unready member counts as failed",
			snap: Snapshot{
				Members:        []Member{{Name: "a", Weight: 100, MaxSessions: 100}, ready("b", 0)},
				Hubs:           []Hub{dyn("ns/h", "a", 0)},
				MaxUnavailable: 1,
			},
			wantDynamic: map[string]string{"ns/h": "b"},
			wantMoves:   []Move{{Hub: "ns/h", From: "a", To: "b", Reason: ReasonMemberFailed}},
		},
		{
			name: "failed member that is gone from Members",
			snap: Snapshot{
				Members:        []Member{ready("b", 0)},
				Hubs:           []Hub{dyn("ns/h", "a", 3)},
				Failed:         []string{"a"},
				MaxUnavailable: 1,
			},
			wantDynamic: map[string]string{"ns/h": "b"},
			wantMoves:   []Move{{Hub: "ns/h", From: "a", To: "b", Reason: ReasonMemberFailed}},
		},
		{
			name: "member removed by scale-down",
			snap: Snapshot{
				Members: []Member{ready("a", 0)},
				Hubs:    []Hub{dyn("ns/h", "member-4", 2)},
			},
			wantDynamic: map[string]string{"ns/h": "a"},
			wantMoves:   []Move{{Hub: "ns/h", From: "member-4", To: "a", Reason: ReasonMemberRemoved}},
		},
		{
			name: "no eligible member leaves hubs unplaced",
			snap: Snapshot{
				Members:        []Member{ready("a", 100), {Name: "b", MaxSessions: 100}, ready("c", 0)},
				Hubs:           []Hub{dyn("ns/new", "", 0), dyn("ns/orphan", "c", 4)},
				Failed:         []string{"c"},
				MaxUnavailable: 2,
			},
			wantDynamic:  map[string]string{},
			wantUnplaced: []string{"ns/new", "ns/orphan"},
		},
		{
			name: "a hub that fills a member sends the next one elsewhere",
			snap: Snapshot{
				Members:        []Member{ready("a", 0), ready("b", 50)},
				Hubs:           []Hub{dyn("ns/x", "gone", 100), dyn("ns/y", "gone", 10)},
				Failed:         []string{"gone"},
				MaxUnavailable: 1,
			},
			wantDynamic: map[string]string{"ns/x": "a", "ns/y": "b"},
			wantMoves: []Move{
				{Hub: "ns/x", From: "gone", To: "a", Reason: ReasonMemberFailed},
				{Hub: "ns/y", From: "gone", To: "b", Reason: ReasonMemberFailed},
			},
		},
		{
			name: "exactly maxUnavailable failed still reassigns",
			snap: Snapshot{
				Members:        []Member{ready("m0", 0), ready("m1", 0), ready("m2", 0)},
				Hubs:           []Hub{dyn("ns/a", "m0", 0), dyn("ns/b", "m1", 0)},
				Failed:         []string{"m0", "m1"},
				MaxUnavailable: 2,
			},
			wantDynamic: map[string]string{"ns/a": "m2", "ns/b": "m2"},
			wantMoves: []Move{
				{Hub: "ns/a", From: "m0", To: "m2", Reason: ReasonMemberFailed},
				{Hub: "ns/b", From: "m1", To: "m2", Reason: ReasonMemberFailed},
			},
		},
		{
			name: "more than maxUnavailable failed holds; new and removed hubs still placed",
			snap: Snapshot{
				Members: []Member{ready("member-0", 0), ready("member-1", 0), ready("member-2", 0), ready("member-3", 5)},
				Hubs: []Hub{
					dyn("ns/a", "member-0", 7), dyn("ns/b", "member-2", 0),
					dyn("ns/new", "", 0), dyn("ns/scaled", "member-9", 0), dyn("ns/ok", "member-3", 5),
				},
				Failed:         []string{"member-2", "member-0", "member-1"},
				MaxUnavailable: 1,
			},
			wantDynamic: map[string]string{
				"ns/a": "member-0", "ns/b": "member-2",
				"ns/new": "member-3", "ns/scaled": "member-3", "ns/ok": "member-3",
			},
			wantMoves: []Move{
				{Hub: "ns/new", To: "member-3", Reason: ReasonInitial},
				{Hub: "ns/scaled", From: "member-9", To: "member-3", Reason: ReasonMemberRemoved},
			},
			wantHeld: "3 members failed at once (member-0, member-1, member-2); maxUnavailable is 1: holding reassignment to avoid a storm under a partition",
		},
		{
			name: "maxUnavailable 0 holds on a single failure",
			snap: Snapshot{
				Members: []Member{ready("a", 0), ready("b", 0)},
				Hubs:    []Hub{dyn("ns/h", "a", 1)},
				Failed:  []string{"a"},
			},
			wantDynamic: map[string]string{"ns/h": "a"},
			wantHeld:    "1 member failed at once (a); maxUnavailable is 0: holding reassignment to avoid a storm under a partition",
		},
		{
			name: "mass failure with nothing to hold is not reported as held",
			snap: Snapshot{
				Members: []Member{{Name: "a", MaxSessions: 100}, {Name: "b", MaxSessions: 100}, ready("c", 0)},
				Hubs:    []Hub{dyn("ns/h", "", 0)},
			},
			wantDynamic: map[string]string{"ns/h": "c"},
			wantMoves:   []Move{{Hub: "ns/h", To: "c", Reason: ReasonInitial}},
		},
		{
			name: "static hub has an instance on every ready non-failed member, full ones included",
			snap: Snapshot{
				Members:        []Member{ready("c", 100), ready("a", 0), {Name: "b", MaxSessions: 100}, ready("d", 0)},
				Hubs:           []Hub{{Key: "ns/s", Type: Static}, {Key: "ns/t", Type: Static, Sessions: 40}},
				Failed:         []string{"d"},
				MaxUnavailable: 5,
			},
			wantDynamic: map[string]string{},
			wantStatic:  map[string][]string{"ns/s": {"a", "c"}, "ns/t": {"a", "c"}},
		},
		{
			name:        "static hub with no ready member has no instances",
			snap:        Snapshot{Hubs: []Hub{{Key: "ns/s", Type: Static}}},
			wantDynamic: map[string]string{},
			wantStatic:  map[string][]string{"ns/s": {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Place(tt.snap)
			if tt.wantStatic == nil {
				tt.wantStatic = map[string][]string{}
			}
			if !reflect.DeepEqual(d.Dynamic, tt.wantDynamic) {
				t.Errorf("Dynamic = %v, want %v", d.Dynamic, tt.wantDynamic)
			}
			if !reflect.DeepEqual(d.Static, tt.wantStatic) {
				t.Errorf("Static = %v, want %v", d.Static, tt.wantStatic)
			}
			if !reflect.DeepEqual(d.Moves, tt.wantMoves) {
				t.Errorf("Moves = %+v, want %+v", d.Moves, tt.wantMoves)
			}
			if !reflect.DeepEqual(d.Unplaced, tt.wantUnplaced) {
				t.Errorf("Unplaced = %v, want %v", d.Unplaced, tt.wantUnplaced)
			}
			if d.Held != (tt.wantHeld != "") || d.HeldReason != tt.wantHeld {
				t.Errorf("Held = %v, %q; want %q", d.Held, d.HeldReason, tt.wantHeld)
			}
		})
	}
}

func TestHeldReasonNamesAtMostTen(t *testing.T) {
	var members []Member
	var failed []string
	var hubs []Hub
	for i := range 12 {
		name := fmt.Sprintf("m%02d", i)
		members = append(members, ready(name, 0))
		failed = append(failed, name)
		hubs = append(hubs, dyn("ns/"+name, name, 0))
	}
	d := Place(Snapshot{Members: members, Hubs: hubs, Failed: failed, MaxUnavailable: 3})
	want := "12 members failed at once (m00, m01, m02, m03, m04, m05, m06, m07, m08, m09 and 2 more); maxUnavailable is 3: holding reassignment to avoid a storm under a partition"
	if d.HeldReason != want {
		t.Errorf("HeldReason = %q\nwant %q", d.HeldReason, want)
	}
}

func countPerMember(d Decision) map[string]int {
	n := map[string]int{}
	for _, m := range d.Dynamic {
		n[m]++
	}
	return n
}

func TestManyNewHubsSpreadEvenly(t *testing.T) {
	s := Snapshot{}
	for i := range 100 {
		s.Members = append(s.Members, Member{Name: fmt.Sprintf("member-%d", i), Ready: true, MaxSessions: 1000})
	}
	for i := range 10000 {
		s.Hubs = append(s.Hubs, dyn(fmt.Sprintf("ns/hub-%05d", i), "", 0))
	}
	n := countPerMember(Place(s))
	for _, m := range s.Members {
		if n[m.Name] != 100 {
			t.Errorf("%s got %d hubs, want 100", m.Name, n[m.Name])
		}
	}
}

func TestNewHubsSpreadByWeight(t *testing.T) {
	s := Snapshot{Members: []Member{
		{Name: "heavy", Ready: true, Weight: 200, MaxSessions: 50},
		{Name: "light", Ready: true, Weight: 100, MaxSessions: 50},
		{Name: "default", Ready: true, MaxSessions: 50},
	}}
	for i := range 4000 {
		s.Hubs = append(s.Hubs, dyn(fmt.Sprintf("ns/hub-%04d", i), "", 0))
	}
	n := countPerMember(Place(s))
	if n["heavy"] != 2000 || n["light"] != 1000 || n["default"] != 1000 {
		t.Errorf("hubs per member = %v, want heavy 2000, light 1000, default 1000", n)
	}
}

// New hubs first fill the member with fewer sessions, then alternate once
// the expected loads meet, instead of all piling onto the idlest member.
func TestNewHubsBalanceAgainstExistingLoad(t *testing.T) {
	s := Snapshot{Members: []Member{
		{Name: "busy", Ready: true, Sessions: 10, MaxSessions: 1000},
		{Name: "idle", Ready: true, MaxSessions: 1000},
	}}
	for i := range 30 {
		s.Hubs = append(s.Hubs, dyn(fmt.Sprintf("ns/hub-%02d", i), "", 0))
	}
	n := countPerMember(Place(s))
	if n["idle"] != 20 || n["busy"] != 10 {
		t.Errorf("hubs per member = %v, want idle 20, busy 10", n)
	}
}

func TestPlaceIgnoresInputOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		s := randomSnapshot(r)
		want := Place(s)
		r.Shuffle(len(s.Members), func(i, j int) { s.Members[i], s.Members[j] = s.Members[j], s.Members[i] })
		r.Shuffle(len(s.Hubs), func(i, j int) { s.Hubs[i], s.Hubs[j] = s.Hubs[j], s.Hubs[i] })
		r.Shuffle(len(s.Failed), func(i, j int) { s.Failed[i], s.Failed[j] = s.Failed[j], s.Failed[i] })
		if got := Place(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffled input changed the decision:\n%+v\nvs\n%+v", got, want)
		}
	}
}

func TestPlaceDoesNotModifyInput(t *testing.T) {
	s := Snapshot{
		Members: []Member{ready("b", 0), ready("a", 0)},
		Hubs:    []Hub{dyn("ns/z", "", 0), dyn("ns/a", "", 0)},
		Failed:  []string{"x"},
	}
	before := fmt.Sprintf("%+v", s)
	Place(s)
	if after := fmt.Sprintf("%+v", s); after != before {
		t.Errorf("Place changed its input:\n%s\n%s", before, after)
	}
}
