// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Helpers of the pure tests (*_unit_test.go): they build the reconcilers'
// inputs by hand, so a test states exactly the member states and previous
// status it is about, and runs without a control plane.

// unitMembers is a member set indexed by name, as computeMembers returns it.
func unitMembers(views ...memberView) memberSet {
	s := memberSet{index: map[string]int{}}
	for _, v := range views {
		s.index[v.Name] = len(s.Members)
		s.Members = append(s.Members, v)
	}
	return s
}

func readyMember(name string) memberView {
	return memberView{Name: name, State: vpnv1alpha1.MemberReady}
}

func startingMember(name, msg string) memberView {
	return memberView{Name: name, State: vpnv1alpha1.MemberStarting, Message: msg}
}

func failedMember(name, reason, msg string) memberView {
	return memberView{Name: name, State: vpnv1alpha1.MemberFailed, FailReason: reason, Message: msg}
}

// unitHub is a hub as the placement pass sees it: its object and the status
// it had before this pass.
func unitHub(name string, typ vpnv1alpha1.HubType, prev vpnv1alpha1.VirtualHubStatus) liveHub {
	return liveHub{
		obj: &vpnv1alpha1.VirtualHub{
			ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: name, Generation: 3},
			Spec:       vpnv1alpha1.VirtualHubSpec{Type: typ},
		},
		status: prev,
	}
}

// wantCondition is one condition as `kubectl describe` shows it.
type wantCondition struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

func checkCondition(t *testing.T, conds []metav1.Condition, typ string, want wantCondition) {
	t.Helper()
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		t.Errorf("no %s condition; want %s %s %q", typ, want.status, want.reason, want.message)
		return
	}
	if c.Status != want.status || c.Reason != want.reason || c.Message != want.message {
		t.Errorf("%s condition:\n got  %s %s %q\n want %s %s %q", typ, c.Status, c.Reason, c.Message, want.status, want.reason, want.message)
	}
}

func condition(typ string, s metav1.ConditionStatus, reason, msg string, at metav1.Time) metav1.Condition {
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: 3, LastTransitionTime: at}
}
