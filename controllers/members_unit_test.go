// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// TestComputeMembersClaimedLease: a member whose Lease a peer claimed (it
// judged the member dead and is moving its hubs) counts as failed at once,
// with the claim's reason and evidence, although its renewTime is fresh and
// its pod still reads Ready; a member that never was up is only starting.
func TestComputeMembersClaimedLease(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cl := &vpnv1alpha1.VPNCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "vpn", Namespace: "ns"},
		Spec:       vpnv1alpha1.VPNClusterSpec{Members: 3, Failover: vpnv1alpha1.FailoverSpec{LeaseDurationSeconds: 3}},
	}
	readyPod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{
			Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		}}
	}
	lease := func(name, holder string, ann map[string]string) *coordinationv1.Lease {
		rt := metav1.NewMicroTime(now.Add(-500 * time.Millisecond))
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &rt}}
	}
	claim := map[string]string{memberpod.AnnotationClaim: memberlease.EncodeClaim(memberlease.Claim{
		By: "vpn-member-0", Reason: "MemberDead", Message: "its mesh link ended and 10.0.0.2:8444 refused a connection (process gone)", Time: now,
	})}
	pods := map[string]*corev1.Pod{"vpn-member-0": readyPod("vpn-member-0"), "vpn-member-1": readyPod("vpn-member-1"), "vpn-member-2": readyPod("vpn-member-2")}
	leases := map[string]*coordinationv1.Lease{
		"vpn-member-0": lease("vpn-member-0", "vpn-member-0", nil),
		"vpn-member-1": lease("vpn-member-1", memberpod.ClaimPrefix+"vpn-member-0", claim),
		"vpn-member-2": lease("vpn-member-2", memberpod.ClaimPrefix+"vpn-member-0", claim),
	}
	// vpn-member-1 held a hub (it was up); vpn-member-2 never was.
	s := computeMembers(cl, pods, leases, map[string]bool{"vpn-member-1": true}, now)
	if m := s.byName("vpn-member-0"); !m.Ready() {
		t.Errorf("vpn-member-0: %s %q, want Ready", m.State, m.Message)
	}
	m := s.byName("vpn-member-1")
	if !m.Failed() || m.FailReason != "MemberDead" || !strings.Contains(m.Message, "Lease claimed by vpn-member-0") || !strings.Contains(m.Message, "refused a connection") {
		t.Errorf("vpn-member-1: %s %s %q, want Failed MemberDead naming the claimer and the evidence", m.State, m.FailReason, m.Message)
	}
	if m := s.byName("vpn-member-2"); m.State != vpnv1alpha1.MemberStarting {
		t.Errorf("vpn-member-2 (never up): %s %q, want Starting", m.State, m.Message)
	}
	if got := s.failedNames(); len(got) != 1 || got[0] != "vpn-member-1" {
		t.Errorf("failed members %v, want [vpn-member-1]", got)
	}
}
