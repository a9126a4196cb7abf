// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

// StayMargin is how many points (of MaxPoint) another member must lead the
// entry member by before a static-hub session is moved off the entry. About
// 1% of a member's capacity: 41 sessions on a member of 4096.
//
// Why a margin at all: the cluster Service already spreads connections over
// the members, and a moved session is relayed — the entry still carries its
// TLS and copies every frame once more over the mesh (measured at about half
// of direct throughput on one box). Moving it pays only when the entry is
// clearly busier than another member; SoftEther moves every session to the
// best point because its clients reconnect directly to the member it names.
const StayMargin = 1000

// SessionCandidate is a member that could take a static hub's session.
type SessionCandidate struct {
	Member
	// Free is how many licenses of the session's kind the member may still
	// admit; negative means unlimited.
	Free int
}

// SessionMember picks the member for a new session of a static hub that
// entry, the member the client reached, also holds. It returns entry itself
// unless entry cannot take the session (not ready, full, or without a free
// license) or another eligible member's point leads entry's by more than
// margin; then it returns the eligible member with the best point (ties as
// BestMember: fewer instances per weight, then name — instances is nil here,
// every member holds the static hub). ok is false when no member can take
// it, and the caller lets the entry refuse with its own reason.
func SessionMember(entry string, cands []SessionCandidate, margin int) (name string, ok bool) {
	var best, self candidate
	found, selfOK := false, false
	for i := range cands {
		c := &cands[i]
		if !c.Ready || c.Free == 0 || full(c.Sessions, c.Weight, c.MaxSessions) {
			continue
		}
		cc := candidate{name: c.Name, point: Point(c.Sessions, c.Weight, c.MaxSessions), weight: effectiveWeight(c.Weight)}
		if c.Name == entry {
			self, selfOK = cc, true
		}
		if !found || better(&cc, &best) {
			best, found = cc, true
		}
	}
	switch {
	case !found:
		return "", false
	case selfOK && best.point-self.point <= margin:
		return entry, true
	}
	return best.name, true
}
