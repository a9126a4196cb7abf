// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import (
	"testing"
	"time"
)

func bm(name string, ready, eligible, stopped bool, proc string) BridgeMember {
	return BridgeMember{Name: name, Ready: ready, Eligible: eligible, Stopped: stopped, Process: proc}
}

func TestPlaceBridge(t *testing.T) {
	grace := 10 * time.Second
	up := func(name, proc string) BridgeMember { return bm(name, true, true, false, proc) }
	cases := []struct {
		name    string
		st      BridgeState
		members []BridgeMember
		want    BridgeDecision
	}{
		{"first placement takes the first eligible ready member",
			BridgeState{Grace: grace},
			[]BridgeMember{bm("m0", true, false, false, "a"), up("m1", "b"), up("m2", "c")},
			BridgeDecision{Holder: "m1", Active: true, Why: BridgePlaced, Process: "b"}},
		{"no eligible member",
			BridgeState{Grace: grace},
			[]BridgeMember{bm("m0", true, false, false, "a"), bm("m1", false, true, false, "b")},
			BridgeDecision{Why: BridgeNoEligible}},
		{"sticky while the same process is ready",
			BridgeState{Holder: "m2", Active: true, HolderProcess: "c", Known: true, Grace: grace},
			[]BridgeMember{up("m0", "a"), up("m1", "b"), up("m2", "c")},
			BridgeDecision{Holder: "m2", Active: true, Why: BridgeKept, Process: "c"}},
		{"a restarted holder that is ready again is activated for its new process",
			BridgeState{Holder: "m2", Active: true, HolderProcess: "c", Known: true, Grace: grace},
			[]BridgeMember{up("m0", "a"), up("m2", "c2")},
			BridgeDecision{Holder: "m2", Active: true, Why: BridgeRestarted, Process: "c2"}},
		{"dead container: moves at once",
			BridgeState{Holder: "m0", Active: true, HolderProcess: "a", Known: true, Grace: grace},
			[]BridgeMember{bm("m0", false, true, true, ""), up("m1", "b")},
			BridgeDecision{Holder: "m1", Active: true, Why: BridgeMoved, Process: "b", From: "m0"}},
		{"restarted container not ready yet: the old process is gone, moves",
			BridgeState{Holder: "m0", Active: true, HolderProcess: "a", Known: true, Grace: grace},
			[]BridgeMember{bm("m0", false, true, false, "a2"), up("m1", "b")},
			BridgeDecision{Holder: "m1", Active: true, Why: BridgeMoved, Process: "b", From: "m0"}},
		{"not ready but the same process runs: released, not moved",
			BridgeState{Holder: "m0", Active: true, HolderProcess: "a", Known: true, Grace: grace},
			[]BridgeMember{bm("m0", false, true, false, "a"), up("m1", "b")},
			BridgeDecision{Holder: "m0", Why: BridgeReleasing, Wait: grace}},
		{"no longer eligible: released first",
			BridgeState{Holder: "m0", Active: true, HolderProcess: "a", Known: true, Grace: grace},
			[]BridgeMember{bm("m0", true, false, false, "a"), up("m1", "b")},
			BridgeDecision{Holder: "m0", Why: BridgeReleasing, Wait: grace}},
		{"released and still alive within the grace: waits",
			BridgeState{Holder: "m0", HolderProcess: "a", Known: true, Inactive: 4 * time.Second, Grace: grace},
			[]BridgeMember{bm("m0", false, true, false, "a"), up("m1", "b")},
			BridgeDecision{Holder: "m0", Why: BridgeReleasing, Wait: 6 * time.Second}},
		{"released and the grace passed: moves",
			BridgeState{Holder: "m0", HolderProcess: "a", Known: true, Inactive: grace, Grace: grace},
			[]BridgeMember{bm("m0", false, true, false, "a"), up("m1", "b")},
			BridgeDecision{Holder: "m1", Active: true, Why: BridgeMoved, Process: "b", From: "m0"}},
		{"released and its Lease expired: moves",
			BridgeState{Holder: "m0", HolderProcess: "a", Known: true, Inactive: time.Second, Grace: grace},
			[]BridgeMember{bm("m0", false, true, true, "a"), up("m1", "b")},
			BridgeDecision{Holder: "m1", Active: true, Why: BridgeMoved, Process: "b", From: "m0"}},
		{"released holder ready again: back on it",
			BridgeState{Holder: "m0", HolderProcess: "a", Known: true, Inactive: time.Second, Grace: grace},
			[]BridgeMember{up("m0", "a"), up("m1", "b")},
			BridgeDecision{Holder: "m0", Active: true, Why: BridgePlaced, Process: "a"}},
		{"unknown process and holder not ready: never assumed dead",
			BridgeState{Holder: "m0", Active: true, Grace: grace},
			[]BridgeMember{bm("m0", false, true, false, "a2"), up("m1", "b")},
			BridgeDecision{Holder: "m0", Why: BridgeReleasing, Wait: grace}},
		{"holder gone from the member list counts as stopped",
			BridgeState{Holder: "m9", Active: true, HolderProcess: "z", Known: true, Grace: grace},
			[]BridgeMember{up("m1", "b")},
			BridgeDecision{Holder: "m1", Active: true, Why: BridgeMoved, Process: "b", From: "m9"}},
		{"holder stopped, nobody eligible: no bridge",
			BridgeState{Holder: "m0", Active: true, HolderProcess: "a", Known: true, Grace: grace},
			[]BridgeMember{bm("m0", false, true, true, "")},
			BridgeDecision{Why: BridgeNoEligible}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := PlaceBridge(c.st, c.members); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestPlaceBridgeNeverTwo walks every combination of holder state and checks
// the safety rule: a decision naming a different member than the holder is
// only made when the holder certainly stopped or had the grace to stop.
func TestPlaceBridgeNeverTwo(t *testing.T) {
	grace := 10 * time.Second
	for mask := range 1 << 7 {
		bit := func(i int) bool { return mask&(1<<i) != 0 }
		h := bm("m0", bit(0), bit(1), bit(2), "a")
		if bit(3) {
			h.Process = "a2"
		}
		st := BridgeState{Holder: "m0", Active: bit(4), HolderProcess: "a", Known: bit(5), Grace: grace}
		if bit(6) {
			st.Inactive = grace
		}
		d := PlaceBridge(st, []BridgeMember{h, bm("m1", true, true, false, "b")})
		if d.Holder == "m1" {
			procGone := st.Known && h.Process != st.HolderProcess
			if !h.Stopped && !procGone && !(!st.Active && st.Inactive >= grace) {
				t.Errorf("mask %07b: moved to m1 while m0 may still bridge: %+v", mask, d)
			}
		}
	}
}
