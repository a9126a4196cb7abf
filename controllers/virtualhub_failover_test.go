// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// moved waits until the hub left from and returns it.
func moved(t *testing.T, ns, name, from string) *vpnv1alpha1.VirtualHub {
	t.Helper()
	var h *vpnv1alpha1.VirtualHub
	eventually(t, wait, "hub "+name+" moved off "+from, func() error {
		h = get(t, &vpnv1alpha1.VirtualHub{}, ns, name)
		if h.Status.AssignedMember == from || h.Status.AssignedMember == "" {
			return fmt.Errorf("still on %q", h.Status.AssignedMember)
		}
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonMemberReady)
	})
	return h
}

// Marking the hub's member pod not Ready moves the hub at once, recording
// lastReassignment and an Event.
func TestPodNotReadyMovesHub(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 3, nil)
	startMembers(t, cl)
	newHub(t, ns, "hub", cl, vpnv1alpha1.HubDynamic)
	from := placedHub(t, ns, "hub").Status.AssignedMember

	setPodReady(t, ns, from, false)
	h := moved(t, ns, "hub", from)
	r := h.Status.LastReassignment
	if r == nil || r.From != from || r.To != h.Status.AssignedMember || r.Reason != ReasonMemberFailed || r.Time.IsZero() {
		t.Fatalf("lastReassignment %+v, want from %s to %s reason %s", r, from, h.Status.AssignedMember, ReasonMemberFailed)
	}
	eventually(t, wait, "Reassigned Event", func() error {
		return eventFor(ns, "hub", ReasonReassigned, from, h.Status.AssignedMember, ReasonMemberFailed)
	})
	eventually(t, wait, "cluster reports the failed member", func() error {
		c := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
		if err := condIs(c.Status.Conditions, vpnv1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonMembersFailed); err != nil {
			return err
		}
		return eventFor(ns, "vpn", ReasonMemberFailedEvent, from)
	})

	// The member comes back: it is Ready again and the hub stays where it is
	// (moving a healthy hub would drop its sessions).
	setPodReady(t, ns, from, true)
	eventually(t, wait, "member recovers", func() error {
		c := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
		return condIs(c.Status.Conditions, vpnv1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonNoMemberFailed)
	})
	if got := get(t, &vpnv1alpha1.VirtualHub{}, ns, "hub").Status.AssignedMember; got != h.Status.AssignedMember {
		t.Errorf("hub moved back to %s after recovery", got)
	}
}

// A member whose Lease is not renewed loses its hub when the Lease expires,
// with reason LeaseExpired, although its pod still looks Ready (a lost node).
func TestExpiredLeaseMovesHub(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 3, func(c *vpnv1alpha1.VPNCluster) { c.Spec.Failover.LeaseDurationSeconds = 2 })
	startMembers(t, cl)
	// The members renew every leaseDuration/3, like `hubfleet member`.
	renewing := map[string]bool{"vpn-member-0": true, "vpn-member-1": true, "vpn-member-2": true}
	stop := renewer(t, cl, renewing)
	defer func() { stop() }()

	newHub(t, ns, "hub", cl, vpnv1alpha1.HubDynamic)
	from := placedHub(t, ns, "hub").Status.AssignedMember
	stop()
	// Everyone but the hub's member keeps renewing.
	delete(renewing, from)
	stop = renewer(t, cl, renewing)
	stopped := time.Now()

	h := moved(t, ns, "hub", from)
	if took := time.Since(stopped); took < time.Second {
		t.Errorf("hub moved %v after renewals stopped, before the Lease could expire", took)
	}
	r := h.Status.LastReassignment
	if r == nil || r.From != from || r.Reason != ReasonLeaseExpired {
		t.Fatalf("lastReassignment %+v, want from %s reason %s", r, from, ReasonLeaseExpired)
	}
	eventually(t, wait, "Reassigned Event", func() error {
		return eventFor(ns, "hub", ReasonReassigned, from, ReasonLeaseExpired)
	})
}

// renewer renews the named members' Leases every leaseDuration/3 until the
// returned stop is called (idempotent).
func renewer(t *testing.T, cl *vpnv1alpha1.VPNCluster, names map[string]bool) func() {
	t.Helper()
	members := make([]string, 0, len(names))
	for n := range names {
		members = append(members, n)
	}
	slices.Sort(members)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Duration(leaseDuration(cl)) * time.Second / 3)
		defer tick.Stop()
		for {
			for _, m := range members {
				if err := renew(cl, m, time.Now(), ""); err != nil && ctx.Err() == nil {
					t.Errorf("renewing %s: %v", m, err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Failing more members than maxUnavailable holds reassignment: the hub stays
// on its failed member, the cluster is Degraded with a reason naming the
// failed members and the limit, and an Event says so.
func TestMassFailureHoldsReassignment(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 4, func(c *vpnv1alpha1.VPNCluster) {
		c.Spec.Failover.MaxUnavailable = ptr.To(intstr.FromString("25%")) // 1 of 4
	})
	startMembers(t, cl)
	newHub(t, ns, "hub", cl, vpnv1alpha1.HubDynamic)
	from := placedHub(t, ns, "hub").Status.AssignedMember
	other := "vpn-member-0"
	if other == from {
		other = "vpn-member-1"
	}
	// Two failures at once: one pod deleted, one Failed.
	if err := k8s.Delete(ctx(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: other}}); err != nil {
		t.Fatal(err)
	}
	pod := get(t, &corev1.Pod{}, ns, from)
	pod.Status.Phase = corev1.PodFailed
	pod.Status.Reason = "Evicted"
	if err := k8s.Status().Update(ctx(), pod); err != nil {
		t.Fatal(err)
	}

	eventually(t, wait, "cluster Degraded with ReassignmentHeld", func() error {
		c := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
		if err := condIs(c.Status.Conditions, vpnv1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonReassignmentHeld); err != nil {
			return err
		}
		return eventFor(ns, "vpn", ReasonReassignmentHeld, from, other, "maxUnavailable 1")
	})
	eventually(t, wait, "hub held on its failed member", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, ns, "hub")
		if h.Status.AssignedMember != from || h.Status.LastReassignment != nil {
			return fmt.Errorf("hub assigned %q last %+v; want held on %s", h.Status.AssignedMember, h.Status.LastReassignment, from)
		}
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonReassignmentHeld)
	})

	// One member back (its pod re-created by the StatefulSet): one failure is
	// within the limit, so the hold ends and the hub moves.
	startMember(t, cl, mustIndex(t, cl, other))
	h := moved(t, ns, "hub", from)
	if h.Status.LastReassignment == nil || h.Status.LastReassignment.Reason != ReasonMemberFailed {
		t.Errorf("lastReassignment %+v", h.Status.LastReassignment)
	}
}

func mustIndex(t *testing.T, cl *vpnv1alpha1.VPNCluster, name string) int {
	i, ok := memberIndex(cl, name)
	if !ok {
		t.Fatalf("%s is not a member name", name)
	}
	return i
}
