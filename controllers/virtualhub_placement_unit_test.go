// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/placement"
)

// The statuses and Events the placement pass derives for one hub from
// Place's decision: what `kubectl describe virtualhub` shows, and which
// member it names.

const (
	m0 = "vpn-member-0"
	m1 = "vpn-member-1"
	m2 = "vpn-member-2"

	leaseMsg = "Lease not renewed since 2026-12-03T10:00:00Z (leaseDurationSeconds 2)"
)

var unitT0 = metav1.NewTime(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))

// placedOn is the status of a dynamic hub that was placed on member and is
// ready there.
func placedOn(member string) vpnv1alpha1.VirtualHubStatus {
	return vpnv1alpha1.VirtualHubStatus{
		AssignedMember: member, Placement: member,
		Conditions: []metav1.Condition{
			condition(vpnv1alpha1.ConditionScheduled, metav1.ConditionTrue, ReasonPlaced, "assigned to member "+member, unitT0),
			condition(vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonMemberReady, "member "+member+" is ready", unitT0),
		},
	}
}

func TestUnitDynamicHubStatus(t *testing.T) {
	const key = "tenant/office"
	now := unitT0.Add(time.Minute)
	lost := placedOn(m2)
	lost.LastReassignment = &vpnv1alpha1.Reassignment{From: m0, To: m2, Reason: ReasonMemberRemoved, Time: unitT0}
	lost.Conditions = append(lost.Conditions, condition(vpnv1alpha1.ConditionBridged, metav1.ConditionTrue, ReasonBridged, "bridged", unitT0))
	noMember := "no member can take the hub: 1 of 3 members ready, none with free capacity"

	for _, tc := range []struct {
		name    string
		prev    vpnv1alpha1.VirtualHubStatus
		members []memberView
		d       placement.Decision
		move    placement.Move
		per     map[string]int32

		assigned  string
		sessions  int32
		instances []vpnv1alpha1.HubInstance
		scheduled wantCondition
		ready     wantCondition
		moved     *vpnv1alpha1.Reassignment // the LastReassignment written, if any
		event     *hubEvent
	}{{
		name:    "first placement names the member and records a Placed Event",
		members: []memberView{readyMember(m0), readyMember(m1)},
		d:       placement.Decision{Dynamic: map[string]string{key: m1}},
		move:    placement.Move{Hub: key, To: m1, Reason: placement.ReasonInitial},
		per:     map[string]int32{m1: 3},

		assigned: m1, sessions: 3,
		instances: []vpnv1alpha1.HubInstance{{Member: m1, Sessions: 3, Ready: true}},
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-1"},
		ready:     wantCondition{metav1.ConditionTrue, ReasonMemberReady, "member vpn-member-1 is ready"},
		event:     &hubEvent{typ: corev1.EventTypeNormal, reason: ReasonPlaced, action: "Place", note: "placed on member vpn-member-1", member: m1},
	}, {
		name:    "a hub staying on its ready member records no Event",
		prev:    placedOn(m1),
		members: []memberView{readyMember(m0), readyMember(m1)},
		d:       placement.Decision{Dynamic: map[string]string{key: m1}},

		assigned:  m1,
		instances: []vpnv1alpha1.HubInstance{{Member: m1, Ready: true}},
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-1"},
		ready:     wantCondition{metav1.ConditionTrue, ReasonMemberReady, "member vpn-member-1 is ready"},
	}, {
		name:    "a member not ready yet says why in the hub's Ready condition",
		prev:    placedOn(m1),
		members: []memberView{readyMember(m0), startingMember(m1, "starting: container member waiting (CrashLoopBackOff)")},
		d:       placement.Decision{Dynamic: map[string]string{key: m1}},

		assigned:  m1,
		instances: []vpnv1alpha1.HubInstance{{Member: m1, Ready: false}},
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-1"},
		ready:     wantCondition{metav1.ConditionFalse, ReasonMemberNotReady, "member vpn-member-1 is not ready: starting: container member waiting (CrashLoopBackOff)"},
	}, {
		name:    "a hub kept on a failed member during a hold says which member and why",
		prev:    placedOn(m1),
		members: []memberView{readyMember(m0), failedMember(m1, ReasonLeaseExpired, leaseMsg), failedMember(m2, ReasonMemberFailed, "pod failed: Evicted")},
		d: placement.Decision{Dynamic: map[string]string{key: m1}, Held: true,
			HeldReason: "2 members failed, more than maxUnavailable 1"},

		assigned:  m1,
		instances: []vpnv1alpha1.HubInstance{{Member: m1, Ready: false}},
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-1"},
		ready: wantCondition{metav1.ConditionFalse, ReasonReassignmentHeld,
			"member vpn-member-1 failed (" + leaseMsg + ") and is kept: 2 members failed, more than maxUnavailable 1"},
	}, {
		name:    "a move off a failed member names both members and the member's own failure",
		prev:    placedOn(m0),
		members: []memberView{failedMember(m0, ReasonLeaseExpired, leaseMsg), readyMember(m1)},
		d:       placement.Decision{Dynamic: map[string]string{key: m1}},
		move:    placement.Move{Hub: key, From: m0, To: m1, Reason: placement.ReasonMemberFailed},
		// Sessions not yet gone from the old member still count in the total.
		per: map[string]int32{m0: 1, m1: 2},

		assigned: m1, sessions: 3,
		instances: []vpnv1alpha1.HubInstance{{Member: m1, Sessions: 2, Ready: true}},
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-1"},
		ready:     wantCondition{metav1.ConditionTrue, ReasonMemberReady, "member vpn-member-1 is ready"},
		moved:     &vpnv1alpha1.Reassignment{From: m0, To: m1, Reason: ReasonLeaseExpired, Time: metav1.NewTime(now)},
		event: &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonReassigned, action: "Reassign", member: m1,
			note: "moved from vpn-member-0 to vpn-member-1 (LeaseExpired): member vpn-member-0 failed: " + leaseMsg},
	}, {
		name:    "a move off a failed member that is no longer in the set still says it failed",
		prev:    placedOn(m2),
		members: []memberView{readyMember(m0), readyMember(m1)},
		d:       placement.Decision{Dynamic: map[string]string{key: m0}},
		move:    placement.Move{Hub: key, From: m2, To: m0, Reason: placement.ReasonMemberFailed},

		assigned:  m0,
		instances: []vpnv1alpha1.HubInstance{{Member: m0, Ready: true}},
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-0"},
		ready:     wantCondition{metav1.ConditionTrue, ReasonMemberReady, "member vpn-member-0 is ready"},
		moved:     &vpnv1alpha1.Reassignment{From: m2, To: m0, Reason: ReasonMemberFailed, Time: metav1.NewTime(now)},
		event: &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonReassigned, action: "Reassign", member: m0,
			note: "moved from vpn-member-2 to vpn-member-0 (MemberFailed): member vpn-member-2 failed"},
	}, {
		name:    "a move by scale-down says the member was removed",
		prev:    placedOn(m2),
		members: []memberView{readyMember(m0), readyMember(m1)},
		d:       placement.Decision{Dynamic: map[string]string{key: m1}},
		move:    placement.Move{Hub: key, From: m2, To: m1, Reason: placement.ReasonMemberRemoved},

		assigned:  m1,
		instances: []vpnv1alpha1.HubInstance{{Member: m1, Ready: true}},
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-1"},
		ready:     wantCondition{metav1.ConditionTrue, ReasonMemberReady, "member vpn-member-1 is ready"},
		moved:     &vpnv1alpha1.Reassignment{From: m2, To: m1, Reason: ReasonMemberRemoved, Time: metav1.NewTime(now)},
		event: &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonReassigned, action: "Reassign", member: m1,
			note: "moved from vpn-member-2 to vpn-member-1 (MemberRemoved): member vpn-member-2 was removed (scale-down)"},
	}, {
		name:    "no member able to take the hub unschedules it, counts the ready members and warns once",
		prev:    lost,
		members: []memberView{readyMember(m0), startingMember(m1, "starting: pod not created yet"), failedMember(m2, ReasonMemberFailed, "pod failed: Evicted")},
		d:       placement.Decision{Dynamic: map[string]string{}, Unplaced: []string{key}},

		// The previous move stays on record; Bridged goes with the placement.
		moved:     lost.LastReassignment,
		scheduled: wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, noMember},
		ready:     wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, "not scheduled: " + noMember},
		event:     &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonNoMemberAvailable, action: "Schedule", note: noMember},
	}, {
		name: "a hub already reported unplaceable records no second Event",
		prev: vpnv1alpha1.VirtualHubStatus{Conditions: []metav1.Condition{
			condition(vpnv1alpha1.ConditionScheduled, metav1.ConditionFalse, ReasonNoMemberAvailable, "no member can take the hub: 0 of 3 members ready, none with free capacity", unitT0),
		}},
		members: []memberView{readyMember(m0), startingMember(m1, ""), failedMember(m2, ReasonMemberFailed, "")},
		d:       placement.Decision{Dynamic: map[string]string{}},

		scheduled: wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, noMember},
		ready:     wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, "not scheduled: " + noMember},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := unitHub("office", vpnv1alpha1.HubDynamic, tc.prev)
			ms := unitMembers(tc.members...)
			st, ev := dynamicStatus(h, key, tc.d, tc.move, &ms, tc.per, nil, now)

			if st.AssignedMember != tc.assigned || st.Sessions != tc.sessions {
				t.Errorf("assigned %q with %d sessions; want %q with %d", st.AssignedMember, st.Sessions, tc.assigned, tc.sessions)
			}
			if tc.assigned != "" && st.Placement != tc.assigned {
				t.Errorf("placement column %q; want the member %q", st.Placement, tc.assigned)
			}
			if !equalInstances(st.Instances, tc.instances) {
				t.Errorf("instances %+v; want %+v", st.Instances, tc.instances)
			}
			checkCondition(t, st.Conditions, vpnv1alpha1.ConditionScheduled, tc.scheduled)
			checkCondition(t, st.Conditions, vpnv1alpha1.ConditionReady, tc.ready)
			if c := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionBridged); c != nil {
				t.Errorf("a dynamic hub keeps a Bridged condition: %+v", c)
			}
			if !equalReassignment(st.LastReassignment, tc.moved) {
				t.Errorf("lastReassignment %+v; want %+v", st.LastReassignment, tc.moved)
			}
			if !equalEvent(ev, tc.event) {
				t.Errorf("event %+v; want %+v", ev, tc.event)
			}
		})
	}
}

// A condition whose status did not change keeps its transition time, so
// `kubectl describe` shows how long the hub has been ready, not the time of
// the last placement pass.
func TestUnitHubConditionsKeepTheirTransitionTime(t *testing.T) {
	ms := unitMembers(readyMember(m0), readyMember(m1))
	d := placement.Decision{Dynamic: map[string]string{"tenant/office": m1}}
	st, _ := dynamicStatus(unitHub("office", vpnv1alpha1.HubDynamic, placedOn(m1)), "tenant/office", d, placement.Move{}, &ms, nil, nil, unitT0.Add(time.Hour))
	for _, c := range st.Conditions {
		if !c.LastTransitionTime.Equal(&unitT0) {
			t.Errorf("%s condition moved its transition time to %s though it did not change", c.Type, c.LastTransitionTime)
		}
	}

	ms = unitMembers(readyMember(m0), startingMember(m1, "starting: pod not Ready yet"))
	st, _ = dynamicStatus(unitHub("office", vpnv1alpha1.HubDynamic, placedOn(m1)), "tenant/office", d, placement.Move{}, &ms, nil, nil, unitT0.Add(time.Hour))
	if c := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionReady); c == nil || c.LastTransitionTime.Equal(&unitT0) {
		t.Errorf("Ready went False but kept its old transition time: %+v", c)
	}
}

func TestUnitStaticHubStatus(t *testing.T) {
	cl := &vpnv1alpha1.VPNCluster{Spec: vpnv1alpha1.VPNClusterSpec{Members: 3}}
	bridged := condition(vpnv1alpha1.ConditionBridged, metav1.ConditionTrue, ReasonBridged, "bridged on vpn-member-0", unitT0)
	withBridged := vpnv1alpha1.VirtualHubStatus{Conditions: []metav1.Condition{bridged}}

	for _, tc := range []struct {
		name        string
		members     []string
		per         map[string]int32
		localBridge bool

		instances    []vpnv1alpha1.HubInstance
		sessions     int32
		placement    string
		scheduled    wantCondition
		ready        wantCondition
		bridgedStays bool
	}{{
		name:      "instances on every ready member, with each member's sessions",
		members:   []string{m0, m2},
		per:       map[string]int32{m0: 2, m1: 1},
		instances: []vpnv1alpha1.HubInstance{{Member: m0, Sessions: 2, Ready: true}, {Member: m2, Ready: true}},
		// m1's session is on its way out (m1 is not ready) but still counts.
		sessions:  3,
		placement: "2 members",
		scheduled: wantCondition{metav1.ConditionTrue, ReasonPlaced, "instances on 2 ready members"},
		ready:     wantCondition{metav1.ConditionTrue, ReasonInstancesReady, "instances on 2 ready members"},
	}, {
		name:         "a hub with a local bridge keeps its Bridged condition for bridgeStatus to decide",
		members:      []string{m0},
		localBridge:  true,
		instances:    []vpnv1alpha1.HubInstance{{Member: m0, Ready: true}},
		placement:    "1 members",
		scheduled:    wantCondition{metav1.ConditionTrue, ReasonPlaced, "instances on 1 ready members"},
		ready:        wantCondition{metav1.ConditionTrue, ReasonInstancesReady, "instances on 1 ready members"},
		bridgedStays: true,
	}, {
		name:      "no ready member: unscheduled, with the cluster's member count",
		scheduled: wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, "no ready member for an instance (0 of 3 members ready)"},
		ready:     wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, "not scheduled: no ready member for an instance (0 of 3 members ready)"},
	}, {
		name:        "no ready member drops the Bridged condition even with a local bridge",
		localBridge: true,
		scheduled:   wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, "no ready member for an instance (0 of 3 members ready)"},
		ready:       wantCondition{metav1.ConditionFalse, ReasonNoMemberAvailable, "not scheduled: no ready member for an instance (0 of 3 members ready)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := unitHub("lan", vpnv1alpha1.HubStatic, withBridged)
			if tc.localBridge {
				h.obj.Spec.LocalBridge = &vpnv1alpha1.LocalBridgeSpec{Interface: "eth1"}
			}
			st := staticStatus(h, tc.members, tc.per, cl)
			if !equalInstances(st.Instances, tc.instances) || st.Sessions != tc.sessions || st.Placement != tc.placement {
				t.Errorf("instances %+v, %d sessions, placement %q; want %+v, %d, %q", st.Instances, st.Sessions, st.Placement, tc.instances, tc.sessions, tc.placement)
			}
			if st.AssignedMember != "" {
				t.Errorf("a static hub names an assigned member %q", st.AssignedMember)
			}
			checkCondition(t, st.Conditions, vpnv1alpha1.ConditionScheduled, tc.scheduled)
			checkCondition(t, st.Conditions, vpnv1alpha1.ConditionReady, tc.ready)
			if got := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionBridged) != nil; got != tc.bridgedStays {
				t.Errorf("Bridged condition kept: %v; want %v", got, tc.bridgedStays)
			}
		})
	}
}

// transitionEvent records an Event when the Scheduled condition changes
// reason or status, and stays quiet otherwise: a message that only changes
// its figures must not flood `kubectl get events`.
func TestUnitTransitionEvent(t *testing.T) {
	scheduled := func(s metav1.ConditionStatus, reason, msg string) []metav1.Condition {
		return []metav1.Condition{condition(vpnv1alpha1.ConditionScheduled, s, reason, msg, unitT0)}
	}
	notAdmitted := "namespace tenant is not admitted by VPNCluster hubfleet/vpn (hubNamespaces.from: Same)"
	for _, tc := range []struct {
		name     string
		old, now []metav1.Condition
		want     *hubEvent
	}{{
		name: "first placement",
		now:  scheduled(metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-0"),
		want: &hubEvent{typ: corev1.EventTypeNormal, reason: ReasonPlaced, action: "Schedule", note: "assigned to member vpn-member-0"},
	}, {
		name: "refused at first sight",
		now:  scheduled(metav1.ConditionFalse, ReasonNamespaceNotAdmitted, notAdmitted),
		want: &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonNamespaceNotAdmitted, action: "Schedule", note: notAdmitted},
	}, {
		name: "placed hub loses its cluster",
		old:  scheduled(metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-0"),
		now:  scheduled(metav1.ConditionFalse, ReasonClusterNotFound, "VPNCluster tenant/vpn does not exist (or is being deleted)"),
		want: &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonClusterNotFound, action: "Schedule", note: "VPNCluster tenant/vpn does not exist (or is being deleted)"},
	}, {
		name: "unplaceable hub placed again",
		old:  scheduled(metav1.ConditionFalse, ReasonNoMemberAvailable, "no member can take the hub: 0 of 3 members ready, none with free capacity"),
		now:  scheduled(metav1.ConditionTrue, ReasonPlaced, "assigned to member vpn-member-2"),
		want: &hubEvent{typ: corev1.EventTypeNormal, reason: ReasonPlaced, action: "Schedule", note: "assigned to member vpn-member-2"},
	}, {
		name: "refused for another reason, still not scheduled",
		old:  scheduled(metav1.ConditionFalse, ReasonNoMemberAvailable, "no member can take the hub: 0 of 3 members ready, none with free capacity"),
		now:  scheduled(metav1.ConditionFalse, ReasonNamespaceNotAdmitted, notAdmitted),
		want: &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonNamespaceNotAdmitted, action: "Schedule", note: notAdmitted},
	}, {
		name: "same reason, new figures",
		old:  scheduled(metav1.ConditionFalse, ReasonNoMemberAvailable, "no member can take the hub: 0 of 3 members ready, none with free capacity"),
		now:  scheduled(metav1.ConditionFalse, ReasonNoMemberAvailable, "no member can take the hub: 1 of 3 members ready, none with free capacity"),
	}, {
		name: "waiting for members, still waiting",
		old:  scheduled(metav1.ConditionFalse, ReasonWaitingForMembers, "waiting (1 of 3 ready)"),
		now:  scheduled(metav1.ConditionFalse, ReasonWaitingForMembers, "waiting (2 of 3 ready)"),
	}, {
		name: "no Scheduled condition",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := unitHub("office", vpnv1alpha1.HubDynamic, vpnv1alpha1.VirtualHubStatus{Conditions: tc.old})
			got := transitionEvent(h, vpnv1alpha1.VirtualHubStatus{Conditions: tc.now}, "")
			if !equalEvent(got, tc.want) {
				t.Errorf("event %+v; want %+v", got, tc.want)
			}
		})
	}
}

// hubStatusEqual decides whether a status is written at all: a difference it
// misses is a change users never see. TestHubStatusEqualSeesEveryField (in
// the envtest suite) edits each field; these are the comparisons that are not
// plain field equality.
func TestUnitHubStatusEqual(t *testing.T) {
	later := metav1.NewTime(unitT0.Add(time.Second))
	moved := func(at metav1.Time) *vpnv1alpha1.Reassignment {
		return &vpnv1alpha1.Reassignment{From: m0, To: m1, Reason: ReasonLeaseExpired, Time: at}
	}
	ready := func(at metav1.Time) []metav1.Condition {
		return []metav1.Condition{condition(vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonMemberReady, "member vpn-member-1 is ready", at)}
	}
	for _, tc := range []struct {
		name  string
		a, b  vpnv1alpha1.VirtualHubStatus
		equal bool
	}{
		{"both empty", vpnv1alpha1.VirtualHubStatus{}, vpnv1alpha1.VirtualHubStatus{}, true},
		{"no move on either side", vpnv1alpha1.VirtualHubStatus{AssignedMember: m1}, vpnv1alpha1.VirtualHubStatus{AssignedMember: m1}, true},
		{"a move on one side only", vpnv1alpha1.VirtualHubStatus{LastReassignment: moved(unitT0)}, vpnv1alpha1.VirtualHubStatus{}, false},
		{"the same move", vpnv1alpha1.VirtualHubStatus{LastReassignment: moved(unitT0)}, vpnv1alpha1.VirtualHubStatus{LastReassignment: moved(unitT0)}, true},
		{"the same move again later", vpnv1alpha1.VirtualHubStatus{LastReassignment: moved(unitT0)}, vpnv1alpha1.VirtualHubStatus{LastReassignment: moved(later)}, false},
		{"a condition's transition time", vpnv1alpha1.VirtualHubStatus{Conditions: ready(unitT0)}, vpnv1alpha1.VirtualHubStatus{Conditions: ready(later)}, false},
		{"conditions in another order", vpnv1alpha1.VirtualHubStatus{Conditions: append(ready(unitT0), condition(vpnv1alpha1.ConditionScheduled, metav1.ConditionTrue, ReasonPlaced, "x", unitT0))},
			vpnv1alpha1.VirtualHubStatus{Conditions: append([]metav1.Condition{condition(vpnv1alpha1.ConditionScheduled, metav1.ConditionTrue, ReasonPlaced, "x", unitT0)}, ready(unitT0)...)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hubStatusEqual(&tc.a, &tc.b); got != tc.equal {
				t.Errorf("hubStatusEqual = %v; want %v", got, tc.equal)
			}
			if got := hubStatusEqual(&tc.b, &tc.a); got != tc.equal {
				t.Errorf("hubStatusEqual (b, a) = %v; want %v", got, tc.equal)
			}
		})
	}
}

func equalInstances(a, b []vpnv1alpha1.HubInstance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalReassignment(a, b *vpnv1alpha1.Reassignment) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.From == b.From && a.To == b.To && a.Reason == b.Reason && a.Time.Equal(&b.Time)
}

func equalEvent(a, b *hubEvent) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
