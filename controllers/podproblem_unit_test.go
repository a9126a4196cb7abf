// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podProblem's words end up in a member's status message and in the
// cluster's conditions: they must carry Kubernetes' own reason, so the reader
// knows whether to look at the scheduler, the image or the member.
func TestUnitPodProblem(t *testing.T) {
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}
	notReady := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}
	waiting := func(name, reason, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
	}
	now := metav1.Now()

	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{{
		name: "ready",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			scheduled, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}}},
		want: "",
	}, {
		name: "no pod",
		pod:  nil,
		want: "pod does not exist (deleted)",
	}, {
		name: "being deleted, even while still Ready",
		pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}},
		want: "pod is being deleted",
	}, {
		name: "failed with the kubelet's reason",
		pod:  &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}},
		want: "pod failed: Evicted",
	}, {
		name: "exited",
		pod:  &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}},
		want: "pod exited",
	}, {
		name: "unschedulable, with the scheduler's message",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/3 nodes are available: 3 Insufficient memory.",
		}}}},
		want: "pod cannot be scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient memory.",
	}, {
		name: "unschedulable comes before the container state",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}},
			ContainerStatuses: []corev1.ContainerStatus{waiting("member", "ImagePullBackOff", "")},
		}},
		want: "pod cannot be scheduled (Unschedulable)",
	}, {
		name: "image that cannot be pulled",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			Conditions:        []corev1.PodCondition{scheduled, notReady},
			ContainerStatuses: []corev1.ContainerStatus{waiting("member", "ImagePullBackOff", `Back-off pulling image "hubfleet:typo"`)},
		}},
		want: `container member waiting (ImagePullBackOff): Back-off pulling image "hubfleet:typo"`,
	}, {
		name: "an init container is named too",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			Conditions:            []corev1.PodCondition{scheduled, notReady},
			InitContainerStatuses: []corev1.ContainerStatus{waiting("sysctl", "CrashLoopBackOff", "back-off 40s restarting failed container")},
			ContainerStatuses:     []corev1.ContainerStatus{waiting("member", "PodInitializing", "")},
		}},
		want: "container sysctl waiting (CrashLoopBackOff): back-off 40s restarting failed container",
	}, {
		name: "a container being created is normal progress, not a problem to report",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			Conditions:        []corev1.PodCondition{scheduled, notReady},
			ContainerStatuses: []corev1.ContainerStatus{waiting("member", "ContainerCreating", "")},
		}},
		want: "pod not Ready (ContainersNotReady)",
	}, {
		name: "running but not Ready (readiness probe)",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{scheduled, notReady}}},
		want: "pod not Ready (ContainersNotReady)",
	}, {
		name: "no conditions yet",
		pod:  &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}},
		want: "pod not Ready yet",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podProblem(tc.pod); got != tc.want {
				t.Errorf("podProblem = %q\n want %q", got, tc.want)
			}
		})
	}
}
