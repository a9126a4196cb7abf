// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// memberState is a healthy member's load as Place assigns hubs to it.
type memberState struct {
	candidate
	maxSessions int
	// sessions is the real session load: the member's reported sessions plus
	// the sessions of hubs moved onto it. It decides whether the member is
	// full.
	sessions int
	// expected is sessions plus one for every zero-session dynamic hub on the
	// member: a hub nobody has joined yet is expected to get at least one
	// session. It feeds the ranking point, so that a batch of new hubs is
	// spread by load and weight rather than all landing on the member that
	// happens to be idlest right now. It never makes a member full.
	expected int
	index    int // position in the heap
}

func (m *memberState) refresh() {
	m.point = Point(m.expected, m.weight, m.maxSessions)
}

func (m *memberState) eligible() bool {
	return !full(m.sessions, m.weight, m.maxSessions)
}

// memberHeap keeps the best member on top so each hub is placed in
// O(log members).
type memberHeap []*memberState

func (h memberHeap) Len() int           { return len(h) }
func (h memberHeap) Less(i, j int) bool { return better(&h[i].candidate, &h[j].candidate) }
func (h memberHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *memberHeap) Push(x any) {
	m := x.(*memberState)
	m.index = len(*h)
	*h = append(*h, m)
}
func (h *memberHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	*h = old[:len(old)-1]
	return m
}

type pendingHub struct {
	hub    Hub
	reason string
}

// Place decides the members of every hub in s.
//
// A dynamic hub whose Assigned member is healthy (ready and not failed)
// stays there, even if that member is now busier than others: moving a hub
// drops its sessions, so Place never moves a healthy hub to rebalance. New
// hubs, hubs of failed members and hubs of removed members go to the best
// member, one at a time, each placement counting towards the next (see
// memberState.expected), biggest hubs first so they get the emptiest members.
//
// A member counts as failed when it is listed in s.Failed or is not Ready.
// When more members are failed than s.MaxUnavailable, hubs on failed
// members keep their member (no Move) and Decision.Held explains why: a mass
// failure is more likely a partition between the operator and the members
// than dead members, and moving every hub at once would drop every session.
// New hubs and hubs of removed members are still placed on healthy members.
func Place(s Snapshot) Decision {
	d := Decision{
		Dynamic: make(map[string]string, len(s.Hubs)),
		Static:  map[string][]string{},
	}

	failed := make(map[string]bool, len(s.Failed))
	for _, name := range s.Failed {
		failed[name] = true
	}
	members := slices.Clone(s.Members)
	slices.SortFunc(members, compareMembers)
	members = slices.CompactFunc(members, func(a, b Member) bool { return a.Name == b.Name })

	known := make(map[string]bool, len(members))
	healthy := make(map[string]*memberState, len(members))
	var healthyNames []string
	for _, m := range members {
		known[m.Name] = true
		if !m.Ready {
			failed[m.Name] = true
		}
		if failed[m.Name] {
			continue
		}
		st := &memberState{
			candidate:   candidate{name: m.Name, weight: effectiveWeight(m.Weight)},
			maxSessions: m.MaxSessions,
			sessions:    max(m.Sessions, 0),
			expected:    max(m.Sessions, 0),
		}
		healthy[m.Name] = st
		healthyNames = append(healthyNames, m.Name)
	}
	healthyNames = slices.Clip(healthyNames)
	if healthyNames == nil {
		healthyNames = []string{}
	}
	failedNames := make([]string, 0, len(failed))
	for name := range failed {
		failedNames = append(failedNames, name)
	}
	slices.Sort(failedNames)
	holding := len(failedNames) > max(s.MaxUnavailable, 0)

	hubs := slices.Clone(s.Hubs)
	slices.SortFunc(hubs, compareHubs)
	hubs = slices.CompactFunc(hubs, func(a, b Hub) bool { return a.Key == b.Key })

	var pending []pendingHub
	held := 0
	for _, h := range hubs {
		if h.Type == Static {
			d.Static[h.Key] = healthyNames
			continue
		}
		switch st := healthy[h.Assigned]; {
		case h.Assigned == "":
			pending = append(pending, pendingHub{h, ReasonInitial})
		case st != nil:
			d.Dynamic[h.Key] = h.Assigned
			st.instances++
			if h.Sessions <= 0 {
				st.expected++
			}
		case failed[h.Assigned] && holding:
			d.Dynamic[h.Key] = h.Assigned
			held++
		case failed[h.Assigned]:
			pending = append(pending, pendingHub{h, ReasonMemberFailed})
		case !known[h.Assigned]:
			pending = append(pending, pendingHub{h, ReasonMemberRemoved})
		}
	}

	d.Moves, d.Unplaced = assign(healthyNames, healthy, pending, d.Dynamic)

	if held > 0 {
		d.Held = true
		d.HeldReason = heldReason(failedNames, max(s.MaxUnavailable, 0))
	}
	return d
}

// compareMembers and compareHubs order by name, then by every other field,
// so that which of two duplicates wins does not depend on input order.
func compareMembers(a, b Member) int {
	return cmp.Or(
		cmp.Compare(a.Name, b.Name),
		compareBool(a.Ready, b.Ready),
		cmp.Compare(a.Weight, b.Weight),
		cmp.Compare(a.Sessions, b.Sessions),
		cmp.Compare(a.MaxSessions, b.MaxSessions),
	)
}

func compareHubs(a, b Hub) int {
	return cmp.Or(
		cmp.Compare(a.Key, b.Key),
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Assigned, b.Assigned),
		cmp.Compare(a.Sessions, b.Sessions),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// assign places pending hubs on the healthy members, recording each in
// dynamic, and returns the moves (sorted by hub) and the hubs that found no
// member (sorted).
func assign(names []string, healthy map[string]*memberState, pending []pendingHub, dynamic map[string]string) ([]Move, []string) {
	h := make(memberHeap, 0, len(names))
	for _, name := range names {
		st := healthy[name]
		st.refresh()
		if st.eligible() {
			h = append(h, st)
		}
	}
	for i, st := range h {
		st.index = i
	}
	heap.Init(&h)

	// Largest first (then by key, for determinism): the heaviest hubs take
	// the emptiest members and the small ones fill in around them.
	slices.SortStableFunc(pending, func(a, b pendingHub) int {
		if c := cmp.Compare(b.hub.Sessions, a.hub.Sessions); c != 0 {
			return c
		}
		return cmp.Compare(a.hub.Key, b.hub.Key)
	})

	var moves []Move
	if len(pending) > 0 {
		moves = make([]Move, 0, len(pending))
	}
	var unplaced []string
	for _, p := range pending {
		if h.Len() == 0 {
			unplaced = append(unplaced, p.hub.Key)
			continue
		}
		st := h[0]
		dynamic[p.hub.Key] = st.name
		moves = append(moves, Move{Hub: p.hub.Key, From: p.hub.Assigned, To: st.name, Reason: p.reason})
		st.instances++
		st.sessions += max(p.hub.Sessions, 0)
		st.expected += max(p.hub.Sessions, 1)
		st.refresh()
		if st.eligible() {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	if len(moves) == 0 {
		moves = nil // "no moves" has one representation
	}
	slices.SortFunc(moves, func(a, b Move) int { return cmp.Compare(a.Hub, b.Hub) })
	slices.Sort(unplaced)
	return moves, unplaced
}

// heldReasonNames caps how many members a HeldReason names, so a large
// outage still yields a readable condition message.
const heldReasonNames = 10

func heldReason(failed []string, maxUnavailable int) string {
	names := failed
	more := ""
	if len(names) > heldReasonNames {
		names = names[:heldReasonNames]
		more = fmt.Sprintf(" and %d more", len(failed)-heldReasonNames)
	}
	verb := "members"
	if len(failed) == 1 {
		verb = "member"
	}
	return fmt.Sprintf("%d %s failed at once (%s%s); maxUnavailable is %d: holding reassignment to avoid a storm under a partition",
		len(failed), verb, strings.Join(names, ", "), more, maxUnavailable)
}
