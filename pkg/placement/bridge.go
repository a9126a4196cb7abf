// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import "time"

// A static hub's local bridge joins the hub's one Layer-2 segment to a LAN.
// Two members bridging the same hub at once would join the LAN to itself
// through the member mesh: a loop, which floods broadcasts until something
// breaks. PlaceBridge therefore never names a new bridge member while the
// previous one may still be bridging. docs/bridge.md states the rule.
//
// The member side of the contract (pkg/member/cluster): a member bridges only
// while status.localBridge names it, the Bridged condition is True and its
// Lease is fresh; and a member process never bridges an activation it found
// when it started (the Bridged message names the activated process, so a
// restarted process waits until the operator activates the bridge for it).
// That last rule lets the operator treat "the container that held the bridge
// is gone" as "nobody on that member bridges".

// BridgeMember is one member as the bridge placement sees it.
type BridgeMember struct {
	Name string
	// Ready: the member is ready and holds an instance of the hub.
	Ready bool
	// Eligible: the member's node matches the bridge's nodeSelector.
	Eligible bool
	// Stopped: the member certainly does not bridge: its pod is gone or
	// terminal, its container is not running, or its Lease has expired (the
	// member stops bridging before its Lease expires).
	Stopped bool
	// Process identifies the member's running process (the container ID);
	// a different value than the one that held the bridge means that process
	// ended.
	Process string
}

// BridgeState is the bridge as the hub's status and the operator's memory
// have it.
type BridgeState struct {
	// Holder is status.localBridge ("" for none).
	Holder string
	// Active is the Bridged condition being True: the holder is told to bridge.
	Active bool
	// HolderProcess is the holder's process the bridge was activated for (the
	// Bridged condition records it); Known is false when the status does not
	// say (the bridge was never activated, or by an older operator).
	HolderProcess string
	Known         bool
	// Inactive is how long Bridged has been False with this holder.
	Inactive time.Duration
	// Grace is how long a live holder gets to stop after Bridged turned
	// False before the bridge may move without proof that it stopped (the
	// Lease duration: a member that cannot read its assignment for that long
	// cannot renew either, and fences itself).
	Grace time.Duration
}

// BridgeWhy says what PlaceBridge decided.
type BridgeWhy uint8

const (
	BridgeKept       BridgeWhy = iota // holder unchanged and active
	BridgePlaced                      // first placement (or back on the same member)
	BridgeMoved                       // moved to another member: the holder certainly stopped
	BridgeRestarted                   // the holder's process was replaced: activated again for the new one
	BridgeReleasing                   // the holder must stop before the bridge can move; waiting for proof
	BridgeNoEligible                  // no ready member on a matching node
)

// BridgeDecision is the desired bridge.
type BridgeDecision struct {
	Holder string
	Active bool
	Why    BridgeWhy
	// Process is the new holder's process when Active.
	Process string
	// From is the previous holder of a move.
	From string
	// Wait is when to look again for a Releasing bridge (0: on the next event).
	Wait time.Duration
}

// PlaceBridge decides which member bridges the hub. members lists the
// cluster's members in preference order; the holder is preferred while it
// stays ready and eligible (moving a bridge drops LAN traffic). The holder
// may be absent from members (a removed member), which counts as stopped
// only if the caller passes it with Stopped set.
func PlaceBridge(st BridgeState, members []BridgeMember) BridgeDecision {
	var holder *BridgeMember
	var cand *BridgeMember
	for i := range members {
		m := &members[i]
		if m.Name == st.Holder && st.Holder != "" {
			holder = m
		}
		if m.Ready && m.Eligible && (cand == nil || m.Name == st.Holder) {
			cand = m
		}
	}
	place := func(why BridgeWhy) BridgeDecision {
		if cand == nil {
			return BridgeDecision{Why: BridgeNoEligible}
		}
		d := BridgeDecision{Holder: cand.Name, Active: true, Why: why, Process: cand.Process}
		if why == BridgeMoved {
			d.From = st.Holder
		}
		return d
	}
	if st.Holder == "" {
		return place(BridgePlaced)
	}
	// stopped: the holder's bridging process (if any) has certainly ended.
	stopped := holder == nil || holder.Stopped || (st.Known && holder.Process != st.HolderProcess)
	if st.Active {
		if holder != nil && holder.Ready && holder.Eligible && !holder.Stopped {
			why := BridgeKept
			if !st.Known || holder.Process != st.HolderProcess {
				// A new process on the same member (or one the status does
				// not name): only that member can bridge, and its new process
				// waits for an activation naming it.
				why = BridgeRestarted
			}
			return BridgeDecision{Holder: st.Holder, Active: true, Why: why, Process: holder.Process}
		}
		if stopped {
			return place(BridgeMoved)
		}
		// Alive but not ready, or no longer eligible: tell it to stop.
		return BridgeDecision{Holder: st.Holder, Why: BridgeReleasing, Wait: st.Grace}
	}
	// Bridged is False: nobody is told to bridge, but the holder may not
	// have heard yet.
	if cand != nil && cand.Name == st.Holder {
		return place(BridgePlaced) // one member: never two bridges
	}
	if !stopped && st.Inactive < st.Grace {
		return BridgeDecision{Holder: st.Holder, Why: BridgeReleasing, Wait: st.Grace - st.Inactive}
	}
	if cand == nil {
		return BridgeDecision{Why: BridgeNoEligible}
	}
	return place(BridgeMoved)
}
