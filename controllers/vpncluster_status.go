// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"cmp"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/placement"
)

// Condition reasons of a VPNCluster.
const (
	ReasonMembersReady      = "MembersReady"
	ReasonNoMemberReady     = "NoMemberReady"
	ReasonMembersStarting   = "MembersStarting"
	ReasonStable            = "Stable"
	ReasonReassignmentHeld  = "ReassignmentHeld"
	ReasonMembersFailed     = "MembersFailed"
	ReasonNoMemberFailed    = "NoMemberFailed"
	ReasonReconcileError    = "ReconcileError"
	ReasonMemberReadyEvent  = "MemberReady"
	ReasonMemberFailedEvent = "MemberFailed"
)

// setStatus writes the per-member view, the totals and the conditions into
// cl.Status, and an Event for every member that changed state and for a
// reassignment hold, so `kubectl describe` shows why the cluster is as it is.
func (r *VPNClusterReconciler) setStatus(cl *vpnv1alpha1.VPNCluster, ms *memberSet, hubs []vpnv1alpha1.VirtualHub, cr certResult, phaseErr error) {
	prev := map[string]vpnv1alpha1.MemberState{}
	for _, m := range cl.Status.Members {
		prev[m.Name] = m.State
	}
	hubsOn := map[string]int32{}
	for i := range hubs {
		for _, in := range hubs[i].Status.Instances {
			hubsOn[in.Member]++
		}
	}
	weight := cl.Spec.Weight
	if weight <= 0 {
		weight = placement.DefaultWeight
	}
	maxSessions := int(cl.Spec.MaxSessionsPerMember)

	r.explainNotCreated(cl, ms)
	why := startingDetail(ms)

	st := &cl.Status
	st.Members = st.Members[:0:0]
	st.ReadyMembers, st.Sessions = 0, 0
	var starting []string
	for i := range ms.Members {
		v := &ms.Members[i]
		m := vpnv1alpha1.MemberStatus{
			Name: v.Name, Ready: v.Ready(), State: v.State, Weight: weight,
			Sessions: v.Sessions(), Hubs: hubsOn[v.Name], Message: v.Message,
		}
		if v.Pod != nil {
			m.PodIP, m.Node = v.Pod.Status.PodIP, v.Pod.Spec.NodeName
		}
		if v.Ready() {
			m.Point = int32(placement.Point(int(m.Sessions), int(weight), maxSessions))
			st.ReadyMembers++
		}
		if v.State == vpnv1alpha1.MemberStarting {
			starting = append(starting, v.Name)
		}
		st.Sessions += m.Sessions
		st.Members = append(st.Members, m)

		switch old := prev[v.Name]; {
		case v.Failed() && old != vpnv1alpha1.MemberFailed:
			r.Recorder.Eventf(cl, podRef(cl, v.Name), corev1.EventTypeWarning, ReasonMemberFailedEvent, "DetectFailure", "member %s failed (%s): %s; its dynamic hubs move unless reassignment is held", v.Name, v.FailReason, v.Message)
		case v.Ready() && old != vpnv1alpha1.MemberReady:
			r.Recorder.Eventf(cl, podRef(cl, v.Name), corev1.EventTypeNormal, ReasonMemberReadyEvent, "DetectReady", "member %s is ready (pod Ready, Lease fresh)", v.Name)
		}
	}
	observeMembers(cl, ms, hubsOn)
	st.Ready = fmt.Sprintf("%d/%d", st.ReadyMembers, cl.Spec.Members)
	st.Hubs = int32(len(hubs))
	st.ServiceName = clientServiceName(cl)
	if cr.caFingerprint != "" {
		st.CAFingerprint = cr.caFingerprint
	}

	gen := cl.Generation
	set := func(t string, s metav1.ConditionStatus, reason, msg string) bool {
		return meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	if st.ReadyMembers > 0 {
		set(vpnv1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonMembersReady, fmt.Sprintf("%d of %d members ready", st.ReadyMembers, cl.Spec.Members))
	} else {
		set(vpnv1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNoMemberReady, fmt.Sprintf("none of %d members is ready: hubs cannot be served%s", cl.Spec.Members, detail(why)))
	}
	if len(starting) > 0 {
		set(vpnv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonMembersStarting, fmt.Sprintf("waiting for %d members to become ready: %s", len(starting), cmp.Or(why, list(starting))))
	} else {
		set(vpnv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonStable, "no member is starting")
	}

	failed, limit := ms.failedNames(), maxUnavailable(cl)
	switch {
	case phaseErr != nil:
		set(vpnv1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonReconcileError, phaseErr.Error())
	case len(failed) > limit:
		msg := fmt.Sprintf("reassignment held: %d members failed (%s), more than maxUnavailable %d; their dynamic hubs stay assigned until members recover, because a mass failure is more likely a partition than dead members", len(failed), list(failed), limit)
		if set(vpnv1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonReassignmentHeld, msg) {
			r.Recorder.Eventf(cl, nil, corev1.EventTypeWarning, ReasonReassignmentHeld, "HoldReassignment", "%s", msg)
		}
	case len(failed) > 0:
		set(vpnv1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonMembersFailed, fmt.Sprintf("%d members failed (%s), within maxUnavailable %d: their dynamic hubs were moved", len(failed), list(failed), limit))
	default:
		set(vpnv1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonNoMemberFailed, "no member has failed")
	}
}

// list shortens a name list for a condition message.
func list(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// podRef refers to a member pod, even one already deleted, as an Event's
// related object.
func podRef(cl *vpnv1alpha1.VPNCluster, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: name}}
}
