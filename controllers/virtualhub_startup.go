// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// ReasonWaitingForMembers: a new dynamic hub waits for the cluster's members
// that are still starting.
const ReasonWaitingForMembers = "WaitingForMembers"

// A cluster and its hubs are often applied together (one `kubectl apply -k`,
// a GitOps sync). Placed the moment the first member is ready, every hub
// would land on that one member, and dynamic hubs never move while their
// member is healthy (a move drops sessions). So a hub that was never placed
// waits while members of a young cluster are still starting: at most
// startupGrace after the first member became ready (the Available
// condition's transition), and never past startupCap after the cluster was
// created, so a member that cannot start does not keep hubs unplaced.
const (
	startupGrace = 15 * time.Second
	startupCap   = 2 * time.Minute
)

// startupHold says how much longer never-placed dynamic hubs wait, and why;
// 0 means place them now. With no member ready there is nothing to wait
// for: such hubs are unplaceable (NoMemberAvailable) anyway.
func startupHold(cl *vpnv1alpha1.VPNCluster, ms *memberSet, now time.Time) (time.Duration, string) {
	starting, ready := 0, 0
	for i := range ms.Members {
		switch {
		case ms.Members[i].Ready():
			ready++
		case ms.Members[i].State == vpnv1alpha1.MemberStarting:
			starting++
		}
	}
	if starting == 0 || ready == 0 {
		return 0, ""
	}
	until := cl.CreationTimestamp.Add(startupCap)
	if c := meta.FindStatusCondition(cl.Status.Conditions, vpnv1alpha1.ConditionAvailable); c != nil && c.Status == metav1.ConditionTrue {
		until = minTime(until, c.LastTransitionTime.Add(startupGrace))
	}
	if !now.Before(until) {
		return 0, ""
	}
	// An absolute deadline, so the message (and the status) does not change
	// on every pass of a cluster with thousands of waiting hubs.
	return until.Sub(now), fmt.Sprintf("waiting for the members still starting (%d of %d ready) so that new hubs spread over them instead of all landing on the first; placed when they are ready, or at %s at the latest",
		ready, len(ms.Members), until.UTC().Format(time.RFC3339))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
