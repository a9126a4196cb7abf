// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/scheme"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
)

// BenchmarkPlaceSettled10kHubs measures the in-process part of one placement
// reconcile — snapshot, pkg/placement, desired statuses, comparison — for a
// settled cluster of 100 members and 10,000 dynamic hubs in which one member
// has just failed (100 hubs to move). The API writes come on top; the
// operator benchmark (hack/bench-operator.sh) measures those.
func BenchmarkPlaceSettled10kHubs(b *testing.B) {
	const members, hubs = 100, 10000
	cl := &vpnv1alpha1.VPNCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vpn", Generation: 1},
		Spec: vpnv1alpha1.VPNClusterSpec{Members: members, Weight: 100, MaxSessionsPerMember: 4096,
			Failover: vpnv1alpha1.FailoverSpec{LeaseDurationSeconds: 300}},
	}
	now := time.Now()
	var objs []client.Object
	for i := range members {
		name := memberName(cl, i)
		ready := corev1.ConditionTrue
		if i == 0 {
			ready = corev1.ConditionFalse // the failed member
		}
		cl.Status.Members = append(cl.Status.Members, vpnv1alpha1.MemberStatus{Name: name, State: vpnv1alpha1.MemberReady, Ready: true})
		objs = append(objs,
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: selectorLabels(cl)},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}},
			&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: memberlease.Labels("vpn")},
				Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: now}, LeaseDurationSeconds: ptr.To[int32](300)}})
	}
	objs = append(objs, cl)
	var live []liveHub
	for i := range hubs {
		m := memberName(cl, i%members)
		h := &vpnv1alpha1.VirtualHub{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("hub-%05d", i), Generation: 1},
			Spec:       vpnv1alpha1.VirtualHubSpec{ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, Type: vpnv1alpha1.HubDynamic},
		}
		// A settled status, as the reconciler would have written it.
		h.Status = vpnv1alpha1.VirtualHubStatus{ObservedGeneration: 1, AssignedMember: m, Placement: m,
			Instances: []vpnv1alpha1.HubInstance{{Member: m, Ready: true}}}
		cond(&h.Status, 1, vpnv1alpha1.ConditionScheduled, metav1.ConditionTrue, ReasonPlaced, "assigned to member "+m)
		cond(&h.Status, 1, vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonMemberReady, "member "+m+" is ready")
		live = append(live, liveHub{obj: h, status: h.Status})
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build()
	r := &VirtualHubReconciler{Client: c, written: map[types.UID]writtenStatus{}}
	b.ResetTimer()
	for b.Loop() {
		ups, _, err := r.place(context.Background(), cl, client.ObjectKeyFromObject(cl), live, now)
		if err != nil {
			b.Fatal(err)
		}
		if len(ups) != hubs/members {
			b.Fatalf("%d updates, want %d", len(ups), hubs/members)
		}
	}
}
