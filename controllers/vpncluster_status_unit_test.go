// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/placement"
)

// setStatus's conditions and Events, as `kubectl describe vpncluster` shows
// them. The reconciler has no client here: with no APIReader the FailedCreate
// lookup is skipped, and the recorder is a fake that keeps the Events.

type clusterStatusCase struct {
	name       string
	prev       []vpnv1alpha1.MemberStatus // the states the last pass wrote
	members    []memberView
	maxUnavail int
	// maxSessions is spec.maxSessionsPerMember: the scale of a member's point.
	maxSessions int32
	phaseErr    error

	ready       string
	available   wantCondition
	progressing wantCondition
	degraded    wantCondition
	events      []string // as the fake recorder formats them: type, reason, note
}

func TestUnitClusterStatus(t *testing.T) {
	withSessions := func(v memberView, client, bridge int32) memberView {
		v.Client, v.Bridge = client, bridge
		return v
	}
	was := func(state vpnv1alpha1.MemberState, names ...string) []vpnv1alpha1.MemberStatus {
		var out []vpnv1alpha1.MemberStatus
		for _, n := range names {
			out = append(out, vpnv1alpha1.MemberStatus{Name: n, State: state})
		}
		return out
	}
	unschedulable := "starting: pod cannot be scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient memory."
	notCreated := "starting: pod not created (FailedCreate): pods \"vpn-member-2\" is forbidden: no PriorityClass with name gold was found"
	noFailure := wantCondition{metav1.ConditionFalse, ReasonNoMemberFailed, "no member has failed"}
	stable := wantCondition{metav1.ConditionFalse, ReasonStable, "no member is starting"}

	for _, tc := range []clusterStatusCase{{
		name:    "members becoming ready: one Event each",
		prev:    was(vpnv1alpha1.MemberStarting, m0, m1, m2),
		members: []memberView{withSessions(readyMember(m0), 4, 1), readyMember(m1), readyMember(m2)},

		ready:       "3/3",
		available:   wantCondition{metav1.ConditionTrue, ReasonMembersReady, "3 of 3 members ready"},
		progressing: stable,
		degraded:    noFailure,
		events: []string{
			"Normal MemberReady member vpn-member-0 is ready (pod Ready, Lease fresh)",
			"Normal MemberReady member vpn-member-1 is ready (pod Ready, Lease fresh)",
			"Normal MemberReady member vpn-member-2 is ready (pod Ready, Lease fresh)",
		},
	}, {
		name:    "members already ready: no Event",
		prev:    was(vpnv1alpha1.MemberReady, m0, m1, m2),
		members: []memberView{readyMember(m0), readyMember(m1), readyMember(m2)},

		ready:       "3/3",
		available:   wantCondition{metav1.ConditionTrue, ReasonMembersReady, "3 of 3 members ready"},
		progressing: stable,
		degraded:    noFailure,
	}, {
		name: "nothing ready: the conditions say why, each problem once with its members",
		members: []memberView{
			startingMember(m0, unschedulable), startingMember(m1, unschedulable), startingMember(m2, notCreated),
		},

		ready: "0/3",
		available: wantCondition{metav1.ConditionFalse, ReasonNoMemberReady,
			"none of 3 members is ready: hubs cannot be served: " +
				"vpn-member-0, vpn-member-1: pod cannot be scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient memory.; " +
				"vpn-member-2: pod not created (FailedCreate): pods \"vpn-member-2\" is forbidden: no PriorityClass with name gold was found"},
		progressing: wantCondition{metav1.ConditionTrue, ReasonMembersStarting,
			"waiting for 3 members to become ready: " +
				"vpn-member-0, vpn-member-1: pod cannot be scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient memory.; " +
				"vpn-member-2: pod not created (FailedCreate): pods \"vpn-member-2\" is forbidden: no PriorityClass with name gold was found"},
		degraded: noFailure,
	}, {
		name:    "starting members with nothing to report are named",
		prev:    was(vpnv1alpha1.MemberReady, m0),
		members: []memberView{readyMember(m0), startingMember(m1, ""), startingMember(m2, "")},

		ready:       "1/3",
		available:   wantCondition{metav1.ConditionTrue, ReasonMembersReady, "1 of 3 members ready"},
		progressing: wantCondition{metav1.ConditionTrue, ReasonMembersStarting, "waiting for 2 members to become ready: vpn-member-1, vpn-member-2"},
		degraded:    noFailure,
	}, {
		name:       "a member fails within maxUnavailable: its hubs move, one Warning names it and why",
		prev:       was(vpnv1alpha1.MemberReady, m0, m1, m2),
		members:    []memberView{readyMember(m0), failedMember(m1, ReasonLeaseExpired, leaseMsg), readyMember(m2)},
		maxUnavail: 1,

		ready:       "2/3",
		available:   wantCondition{metav1.ConditionTrue, ReasonMembersReady, "2 of 3 members ready"},
		progressing: stable,
		degraded:    wantCondition{metav1.ConditionTrue, ReasonMembersFailed, "1 members failed (vpn-member-1), within maxUnavailable 1: their dynamic hubs were moved"},
		events: []string{
			"Warning MemberFailed member vpn-member-1 failed (LeaseExpired): " + leaseMsg + "; its dynamic hubs move unless reassignment is held",
		},
	}, {
		name:       "a member still failed: no second Event",
		prev:       append(was(vpnv1alpha1.MemberReady, m0, m2), was(vpnv1alpha1.MemberFailed, m1)...),
		members:    []memberView{readyMember(m0), failedMember(m1, ReasonLeaseExpired, leaseMsg), readyMember(m2)},
		maxUnavail: 1,

		ready:       "2/3",
		available:   wantCondition{metav1.ConditionTrue, ReasonMembersReady, "2 of 3 members ready"},
		progressing: stable,
		degraded:    wantCondition{metav1.ConditionTrue, ReasonMembersFailed, "1 members failed (vpn-member-1), within maxUnavailable 1: their dynamic hubs were moved"},
	}, {
		name:       "more failures than maxUnavailable hold reassignment, and say so once",
		prev:       was(vpnv1alpha1.MemberReady, m0, m1, m2),
		members:    []memberView{failedMember(m0, ReasonMemberFailed, "pod failed: Evicted"), readyMember(m1), failedMember(m2, ReasonLeaseExpired, leaseMsg)},
		maxUnavail: 1,

		ready:       "1/3",
		available:   wantCondition{metav1.ConditionTrue, ReasonMembersReady, "1 of 3 members ready"},
		progressing: stable,
		degraded: wantCondition{metav1.ConditionTrue, ReasonReassignmentHeld,
			"reassignment held: 2 members failed (vpn-member-0, vpn-member-2), more than maxUnavailable 1; their dynamic hubs stay assigned until members recover, because a mass failure is more likely a partition than dead members"},
		events: []string{
			"Warning MemberFailed member vpn-member-0 failed (MemberFailed): pod failed: Evicted; its dynamic hubs move unless reassignment is held",
			"Warning MemberFailed member vpn-member-2 failed (LeaseExpired): " + leaseMsg + "; its dynamic hubs move unless reassignment is held",
			"Warning ReassignmentHeld reassignment held: 2 members failed (vpn-member-0, vpn-member-2), more than maxUnavailable 1; their dynamic hubs stay assigned until members recover, because a mass failure is more likely a partition than dead members",
		},
	}, {
		name:     "a reconcile error is the Degraded reason, whatever the members",
		prev:     was(vpnv1alpha1.MemberReady, m0, m1, m2),
		members:  []memberView{readyMember(m0), readyMember(m1), readyMember(m2)},
		phaseErr: errors.New(`creating Secret hubfleet/vpn-tls: secrets "vpn-tls" is forbidden`),

		ready:       "3/3",
		available:   wantCondition{metav1.ConditionTrue, ReasonMembersReady, "3 of 3 members ready"},
		progressing: stable,
		degraded:    wantCondition{metav1.ConditionTrue, ReasonReconcileError, `creating Secret hubfleet/vpn-tls: secrets "vpn-tls" is forbidden`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cl, rec := runSetStatus(t, tc, nil)
			st := &cl.Status
			if st.Ready != tc.ready {
				t.Errorf("READY column %q; want %q", st.Ready, tc.ready)
			}
			checkCondition(t, st.Conditions, vpnv1alpha1.ConditionAvailable, tc.available)
			checkCondition(t, st.Conditions, vpnv1alpha1.ConditionProgressing, tc.progressing)
			checkCondition(t, st.Conditions, vpnv1alpha1.ConditionDegraded, tc.degraded)
			if got := drain(rec); !slices.Equal(got, tc.events) {
				t.Errorf("events:\n got  %q\n want %q", got, tc.events)
			}
		})
	}
}

// The per-member rows of `kubectl get vpncluster -o yaml`: each member's state
// and message, its sessions and the hubs with an instance on it.
func TestUnitClusterStatusMembers(t *testing.T) {
	m := readyMember(m0)
	m.Client, m.Bridge = 4, 1
	m.Pod = &corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-a"}, Status: corev1.PodStatus{PodIP: "10.244.0.7"}}
	tc := clusterStatusCase{maxSessions: 100, members: []memberView{m, startingMember(m1, "starting: waiting for the member's first Lease renewal")}}
	hubs := []vpnv1alpha1.VirtualHub{
		{Status: vpnv1alpha1.VirtualHubStatus{Instances: []vpnv1alpha1.HubInstance{{Member: m0}}}},
		{Status: vpnv1alpha1.VirtualHubStatus{Instances: []vpnv1alpha1.HubInstance{{Member: m0}, {Member: m1}}}},
		{},
	}
	cl, _ := runSetStatus(t, tc, hubs)
	st := cl.Status
	if st.Sessions != 5 || st.Hubs != 3 || st.ReadyMembers != 1 || st.ServiceName != "vpn" {
		t.Errorf("totals: %d sessions, %d hubs, %d ready, service %q; want 5, 3, 1, vpn", st.Sessions, st.Hubs, st.ReadyMembers, st.ServiceName)
	}
	if len(st.Members) != 2 {
		t.Fatalf("%d member rows; want 2", len(st.Members))
	}
	got0, got1 := st.Members[0], st.Members[1]
	if got0.Name != m0 || !got0.Ready || got0.State != vpnv1alpha1.MemberReady || got0.Sessions != 5 || got0.Hubs != 2 ||
		got0.PodIP != "10.244.0.7" || got0.Node != "node-a" {
		t.Errorf("member 0 row %+v", got0)
	}
	// The point is what placement compares: a loaded member's is below an idle one's.
	if idle := int32(placement.Point(0, placement.DefaultWeight, 100)); got0.Point <= 0 || got0.Point >= idle {
		t.Errorf("member 0 with 5 of 100 sessions has point %d; want between 0 and an idle member's %d", got0.Point, idle)
	}
	if got1.Name != m1 || got1.Ready || got1.State != vpnv1alpha1.MemberStarting || got1.Hubs != 1 || got1.Point != 0 ||
		got1.Message != "starting: waiting for the member's first Lease renewal" {
		t.Errorf("member 1 row %+v", got1)
	}
}

// runSetStatus runs setStatus on a three-member cluster "hubfleet/vpn" and
// returns the cluster and the recorder holding its Events.
func runSetStatus(t *testing.T, tc clusterStatusCase, hubs []vpnv1alpha1.VirtualHub) (*vpnv1alpha1.VPNCluster, *events.FakeRecorder) {
	t.Helper()
	cl := &vpnv1alpha1.VPNCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "hubfleet", Name: "vpn", Generation: 2},
		Spec:       vpnv1alpha1.VPNClusterSpec{Members: int32(len(tc.members)), MaxSessionsPerMember: tc.maxSessions},
		Status:     vpnv1alpha1.VPNClusterStatus{Members: tc.prev},
	}
	if tc.maxUnavail > 0 {
		v := intstr.FromInt32(int32(tc.maxUnavail))
		cl.Spec.Failover.MaxUnavailable = &v
	}
	// setStatus publishes the members as metrics; drop this cluster's series
	// so they do not show up in the metrics tests' scrapes.
	t.Cleanup(func() { forgetMemberMetrics(types.NamespacedName{Namespace: cl.Namespace, Name: cl.Name}) })
	rec := events.NewFakeRecorder(16)
	r := &VPNClusterReconciler{Recorder: rec}
	ms := unitMembers(tc.members...)
	r.setStatus(cl, &ms, hubs, certResult{}, tc.phaseErr)
	return cl, rec
}

// A hold is announced when it starts, not on every pass while it lasts.
func TestUnitReassignmentHeldEventOnce(t *testing.T) {
	tc := clusterStatusCase{
		members:    []memberView{failedMember(m0, ReasonMemberFailed, "pod failed: Evicted"), readyMember(m1), failedMember(m2, ReasonLeaseExpired, leaseMsg)},
		maxUnavail: 1,
	}
	cl, rec := runSetStatus(t, tc, nil)
	if n := countReason(drain(rec), ReasonReassignmentHeld); n != 1 {
		t.Fatalf("%d ReassignmentHeld Events on the first pass; want 1", n)
	}
	ms := unitMembers(tc.members...)
	(&VPNClusterReconciler{Recorder: rec}).setStatus(cl, &ms, nil, certResult{}, nil)
	if got := drain(rec); len(got) != 0 {
		t.Errorf("second pass of the same hold recorded %q; want nothing", got)
	}
}

func drain(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func countReason(evs []string, reason string) int {
	n := 0
	for _, e := range evs {
		var typ, r string
		if _, err := fmt.Sscan(e, &typ, &r); err == nil && r == reason {
			n++
		}
	}
	return n
}

// startingDetail keeps the conditions readable with many members: each
// distinct problem once with the members it holds back, at most three.
func TestUnitStartingDetail(t *testing.T) {
	var many []memberView
	for i, msg := range []string{"a", "b", "c", "d", "e", "a"} {
		many = append(many, startingMember(fmt.Sprintf("vpn-member-%d", i), "starting: problem "+msg))
	}
	for _, tc := range []struct {
		name    string
		members []memberView
		want    string
	}{
		{"nobody starting", []memberView{readyMember(m0), failedMember(m1, ReasonLeaseExpired, leaseMsg)}, ""},
		{"starting without a message", []memberView{startingMember(m0, "")}, ""},
		{"shared problem names its members", []memberView{startingMember(m0, "starting: pod not created yet"), readyMember(m1), startingMember(m2, "starting: pod not created yet")},
			"vpn-member-0, vpn-member-2: pod not created yet"},
		{"more than three problems", many,
			"vpn-member-0, vpn-member-5: problem a; vpn-member-1: problem b; vpn-member-2: problem c; and 2 more problems (see status.members)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := unitMembers(tc.members...)
			if got := startingDetail(&ms); got != tc.want {
				t.Errorf("startingDetail = %q\n want %q", got, tc.want)
			}
		})
	}
}

// latestFailedCreate finds the StatefulSet controller's reason for a pod that
// was never created: the newest Event that names exactly that pod.
func TestUnitLatestFailedCreate(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ev := func(pod, err string, last time.Time) corev1.Event {
		return corev1.Event{
			Message:       fmt.Sprintf("create Pod %s in StatefulSet vpn-member failed error: %s", pod, err),
			LastTimestamp: metav1.NewTime(last),
		}
	}
	quota := `pods "vpn-member-1" is forbidden: exceeded quota: pods`
	noClass := `pods "vpn-member-1" is forbidden: no PriorityClass with name gold was found`
	series := ev(m1, noClass, t0)
	series.Series = &corev1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(t0.Add(time.Hour))}
	newAPI := ev(m1, noClass, time.Time{})
	newAPI.EventTime = metav1.NewMicroTime(t0.Add(time.Hour))

	for _, tc := range []struct {
		name string
		evs  []corev1.Event
		want string
	}{
		{"none", nil, ""},
		{"another member's, whose name starts the same", []corev1.Event{ev("vpn-member-10", quota, t0)}, ""},
		{"the newest wins", []corev1.Event{ev(m1, noClass, t0.Add(time.Minute)), ev(m1, quota, t0)}, noClass},
		{"a repeated Event counts from its last repeat", []corev1.Event{ev(m1, quota, t0.Add(time.Minute)), series}, noClass},
		{"an events.k8s.io Event has only eventTime", []corev1.Event{ev(m1, quota, t0.Add(time.Minute)), newAPI}, noClass},
		{"a message of another shape is kept whole", []corev1.Event{{Message: "Pod vpn-member-1 was refused by webhook", LastTimestamp: metav1.NewTime(t0)}},
			"Pod vpn-member-1 was refused by webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := latestFailedCreate(tc.evs, m1); got != tc.want {
				t.Errorf("latestFailedCreate = %q\n want %q", got, tc.want)
			}
		})
	}
}
