// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// A member that cannot start must say why in the terms Kubernetes gave: the
// scheduler's message, the container's waiting reason; and a pod that was
// never created must not read as deleted.
func TestStartingMembersCarryTheirPodsReasons(t *testing.T) {
	cl := &vpnv1alpha1.VPNCluster{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, Spec: vpnv1alpha1.VPNClusterSpec{Members: 3}}
	unschedulable := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/3 nodes are available: 3 Insufficient memory.",
	}}}}
	pulling := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "member", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ImagePullBackOff", Message: `Back-off pulling image "hubfleet:typo"`,
		}}}},
	}}
	pods := map[string]*corev1.Pod{memberName(cl, 0): unschedulable, memberName(cl, 1): pulling}
	ms := computeMembers(cl, pods, nil, nil, time.Now())
	for i, want := range []string{
		"starting: pod cannot be scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient memory.",
		`starting: container member waiting (ImagePullBackOff): Back-off pulling image "hubfleet:typo"`,
		"starting: pod not created yet",
	} {
		if got := ms.Members[i].Message; got != want {
			t.Errorf("member %d: message %q, want %q", i, got, want)
		}
	}
	// A member that was up and lost its pod was deleted: that stays a failure.
	cl.Status.Members = []vpnv1alpha1.MemberStatus{{Name: memberName(cl, 2), State: vpnv1alpha1.MemberReady}}
	ms = computeMembers(cl, pods, nil, nil, time.Now())
	if m := ms.Members[2]; !m.Failed() || m.Message != "pod does not exist (deleted)" {
		t.Errorf("member that was up, pod gone: %s %q", m.State, m.Message)
	}
}

// Envtest runs no scheduler or StatefulSet controller, so the test writes what
// they would: an unschedulable pod for member 0, and for member 1 the
// FailedCreate Event of a missing PriorityClass. The cluster's conditions must
// carry both reasons.
func TestClusterConditionsCarryUnschedulableAndFailedCreate(t *testing.T) {
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "stuck", 2, nil)
	const sched = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
	const forbidden = `pods "stuck-member-1" is forbidden: no PriorityClass with name gold was found`
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: "stuck-member.failedcreate"},
		InvolvedObject: corev1.ObjectReference{Kind: "StatefulSet", APIVersion: "apps/v1", Namespace: ns, Name: stsName(cl)},
		Reason:         "FailedCreate", Type: corev1.EventTypeWarning,
		Message:       fmt.Sprintf("create Pod %s in StatefulSet %s failed error: %s", memberName(cl, 1), stsName(cl), forbidden),
		LastTimestamp: metav1.Now(), FirstTimestamp: metav1.Now(), Count: 1,
		Source: corev1.EventSource{Component: "statefulset-controller"},
	}
	if err := k8s.Create(ctx(), ev); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: memberName(cl, 0), Labels: selectorLabels(cl)},
		Spec: corev1.PodSpec{
			Containers:                   []corev1.Container{{Name: "member", Image: "hubfleet:test"}},
			AutomountServiceAccountToken: ptr.To(false),
		},
	}
	if err := k8s.Create(ctx(), pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodPending
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: sched, LastTransitionTime: metav1.Now()}}
	if err := k8s.Status().Update(ctx(), pod); err != nil {
		t.Fatal(err)
	}

	eventually(t, wait, "conditions carry the scheduler's and the StatefulSet's reasons", func() error {
		got := get(t, &vpnv1alpha1.VPNCluster{}, ns, cl.Name)
		for typ, parts := range map[string][]string{
			vpnv1alpha1.ConditionAvailable:   {"none of 2 members is ready", "stuck-member-0: pod cannot be scheduled (Unschedulable): " + sched, "stuck-member-1: pod not created (FailedCreate): " + forbidden},
			vpnv1alpha1.ConditionProgressing: {"waiting for 2 members", "Unschedulable", "no PriorityClass with name gold"},
		} {
			c := meta.FindStatusCondition(got.Status.Conditions, typ)
			if c == nil {
				return fmt.Errorf("no %s condition", typ)
			}
			for _, p := range parts {
				if !strings.Contains(c.Message, p) {
					return fmt.Errorf("%s message %q lacks %q", typ, c.Message, p)
				}
			}
		}
		if len(got.Status.Members) != 2 || !strings.Contains(got.Status.Members[1].Message, "no PriorityClass with name gold") {
			return fmt.Errorf("members %+v: member 1 does not say why its pod was not created", got.Status.Members)
		}
		return nil
	})
}
