// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// New dynamic hubs wait while a young cluster's members are still starting,
// for at most startupGrace after the first member became ready and never past
// startupCap after the cluster was created.
func TestUnitStartupHold(t *testing.T) {
	created := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return created.Add(d) }
	available := func(since time.Duration) []metav1.Condition {
		return []metav1.Condition{{Type: vpnv1alpha1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: ReasonMembersReady, LastTransitionTime: metav1.NewTime(at(since))}}
	}
	oneOfThree := []memberView{readyMember(m0), startingMember(m1, "starting: pod not Ready yet"), startingMember(m2, "starting: pod not created yet")}
	waitMsg := func(deadline time.Duration) string {
		return "waiting for the members still starting (1 of 3 ready) so that new hubs spread over them instead of all landing on the first; placed when they are ready, or at " +
			at(deadline).Format(time.RFC3339) + " at the latest"
	}

	for _, tc := range []struct {
		name    string
		members []memberView
		conds   []metav1.Condition
		now     time.Duration // since the cluster was created

		hold time.Duration
		msg  string
	}{{
		name:    "first member ready 5s ago: hubs wait out the grace",
		members: oneOfThree, conds: available(30 * time.Second), now: 35 * time.Second,
		hold: 10 * time.Second, msg: waitMsg(45 * time.Second),
	}, {
		name:    "grace over: hubs are placed though members are still starting",
		members: oneOfThree, conds: available(30 * time.Second), now: 45 * time.Second,
	}, {
		name: "Available not yet written (status lags the member): the cap bounds the wait",
		// A member is ready but the cluster status does not say so yet.
		members: oneOfThree, now: 30 * time.Second,
		hold: 90 * time.Second, msg: waitMsg(2 * time.Minute),
	}, {
		name:    "first member ready late: the cap comes before the grace",
		members: oneOfThree, conds: available(115 * time.Second), now: 118 * time.Second,
		hold: 2 * time.Second, msg: waitMsg(2 * time.Minute),
	}, {
		name:    "cap reached: a member that cannot start keeps no hub unplaced",
		members: oneOfThree, conds: available(115 * time.Second), now: 2 * time.Minute,
	}, {
		name:    "every member ready: nothing to wait for",
		members: []memberView{readyMember(m0), readyMember(m1), readyMember(m2)}, conds: available(30 * time.Second), now: 31 * time.Second,
	}, {
		name:    "no member ready: hubs are unplaceable, not held",
		members: []memberView{startingMember(m0, ""), startingMember(m1, ""), startingMember(m2, "")}, now: 10 * time.Second,
	}, {
		name:    "a failed member is not one to wait for",
		members: []memberView{readyMember(m0), failedMember(m1, ReasonLeaseExpired, leaseMsg), readyMember(m2)}, conds: available(30 * time.Second), now: 31 * time.Second,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cl := &vpnv1alpha1.VPNCluster{
				ObjectMeta: metav1.ObjectMeta{Name: "vpn", Namespace: "hubfleet", CreationTimestamp: metav1.NewTime(created)},
				Spec:       vpnv1alpha1.VPNClusterSpec{Members: int32(len(tc.members))},
				Status:     vpnv1alpha1.VPNClusterStatus{Conditions: tc.conds},
			}
			ms := unitMembers(tc.members...)
			hold, msg := startupHold(cl, &ms, at(tc.now))
			if hold != tc.hold || msg != tc.msg {
				t.Errorf("startupHold = %v, %q\n want %v, %q", hold, msg, tc.hold, tc.msg)
			}
		})
	}
}

// The message names an absolute deadline, so the hubs' status does not change
// (and is not rewritten for thousands of hubs) on every pass of the wait.
func TestUnitStartupHoldMessageIsStable(t *testing.T) {
	created := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	cl := &vpnv1alpha1.VPNCluster{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
	ms := unitMembers(readyMember(m0), startingMember(m1, ""))
	h1, first := startupHold(cl, &ms, created.Add(10*time.Second))
	h2, second := startupHold(cl, &ms, created.Add(70*time.Second))
	if first == "" || first != second {
		t.Errorf("message changed while waiting:\n %q\n %q", first, second)
	}
	if h1-h2 != time.Minute {
		t.Errorf("hold %v then %v a minute later; want it to count down to one deadline", h1, h2)
	}
}
