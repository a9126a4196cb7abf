// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

// Member is one member pod as the reconciler last saw it.
type Member struct {
	Name  string
	Ready bool
	// Weight is SoftEther's performance standard ratio; ≤ 0 means
	// DefaultWeight.
	Weight int
	// Sessions is the member's session count across all hubs, including the
	// sessions of the dynamic hubs it holds.
	Sessions int
	// MaxSessions is the member's hard session limit; ≤ 0 means it hosts
	// nothing.
	MaxSessions int
}

// HubType says whether a hub has one instance (Dynamic) or one on every
// member (Static).
type HubType string

const (
	Static  HubType = "Static"
	Dynamic HubType = "Dynamic"
)

// Hub is one VirtualHub. Any Type other than Static is placed as Dynamic.
type Hub struct {
	Key  string // "namespace/name"
	Type HubType
	// Assigned is the member currently holding a dynamic hub, "" if none.
	Assigned string
	// Sessions is the hub's current session count. A moved hub's sessions
	// reconnect to its new member, so they count as load there.
	Sessions int
}

// Snapshot is everything Place needs. Member names and hub keys are expected
// to be unique; of duplicates, the entry that sorts first by all its fields
// wins (a Ready member over an unready one), whatever the input order.
type Snapshot struct {
	Members []Member
	Hubs    []Hub
	// MaxUnavailable is how many members may be failed at once before
	// reassignment holds; a negative value counts as 0.
	MaxUnavailable int
	// Failed lists members the failure detector declared failed (pod gone,
	// unready, lease expired). Names may be absent from Members. A hub
	// assigned to a name found neither in Members nor in Failed is treated
	// as belonging to a removed member (a deliberate scale-down), which is
	// never held.
	Failed []string
}

// Move reasons.
const (
	ReasonInitial       = "Initial"
	ReasonMemberFailed  = "MemberFailed"
	ReasonMemberRemoved = "MemberRemoved"
)

// Move is one change of a dynamic hub's member.
type Move struct {
	Hub      string
	From, To string // From is "" for ReasonInitial
	Reason   string
}

// Decision is the placement the reconcilers should write.
type Decision struct {
	// Dynamic maps each placed dynamic hub to its member. Hubs kept on a
	// failed member because of a hold are included, mapped to that member.
	Dynamic map[string]string
	// Static maps each static hub to the members holding an instance: every
	// ready, non-failed member, sorted. The slices are shared between hubs
	// and must be treated as read-only.
	Static map[string][]string
	// Moves lists every dynamic hub whose member differs from its Assigned
	// one, sorted by hub key.
	Moves []Move
	// Unplaced lists dynamic hubs that need a member but no member is
	// eligible (all full, unready or failed), sorted. They are absent from
	// Dynamic.
	Unplaced []string
	// Held is true when more than MaxUnavailable members are failed and at
	// least one hub therefore stayed on a failed member instead of moving.
	Held       bool
	HeldReason string
}
