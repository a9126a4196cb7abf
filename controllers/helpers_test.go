// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// eventually polls fn until it returns nil or the deadline passes. Polling a
// real API server with a deadline is the synchronisation; nothing sleeps for
// a guessed duration.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a synchronisation guess
	}
}

const wait = 30 * time.Second

func ctx() context.Context { return context.Background() }

func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-", Labels: labels}}
	if err := k8s.Create(ctx(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// newCluster creates a VPNCluster whose Leases last 5 minutes, so tests need
// not renew them unless they test expiry.
func newCluster(t *testing.T, ns, name string, members int32, mutate func(*vpnv1alpha1.VPNCluster)) *vpnv1alpha1.VPNCluster {
	t.Helper()
	cl := &vpnv1alpha1.VPNCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: vpnv1alpha1.VPNClusterSpec{
			Members:  members,
			Failover: vpnv1alpha1.FailoverSpec{LeaseDurationSeconds: 300, MaxUnavailable: ptr.To(intstr.FromInt32(1))},
		},
	}
	if mutate != nil {
		mutate(cl)
	}
	if err := k8s.Create(ctx(), cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// startMember does what the kubelet and the member binary would: creates the
// member pod (envtest runs no StatefulSet controller), marks it Running and
// Ready, and creates its Lease.
func startMember(t *testing.T, cl *vpnv1alpha1.VPNCluster, i int) {
	t.Helper()
	name := memberName(cl, i)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: name, Labels: selectorLabels(cl)},
		Spec: corev1.PodSpec{
			Containers:                   []corev1.Container{{Name: "member", Image: "hubfleet:test"}},
			AutomountServiceAccountToken: ptr.To(false),
		},
	}
	if err := k8s.Create(ctx(), pod); err != nil {
		t.Fatal(err)
	}
	setPodReady(t, cl.Namespace, name, true)
	renewLease(t, cl, name, time.Now(), "")
}

func setPodReady(t *testing.T, ns, name string, ready bool) {
	t.Helper()
	pod := &corev1.Pod{}
	if err := k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "10.0.0.1"
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	if err := k8s.Status().Update(ctx(), pod); err != nil {
		t.Fatal(err)
	}
}

// renewLease creates or renews a member's Lease at renew, with load (JSON)
// as its load report.
func renewLease(t *testing.T, cl *vpnv1alpha1.VPNCluster, member string, at time.Time, load string) {
	t.Helper()
	if err := renew(cl, member, at, load); err != nil {
		t.Fatal(err)
	}
}

func renew(cl *vpnv1alpha1.VPNCluster, member string, renew time.Time, load string) error {
	l := &coordinationv1.Lease{}
	err := k8s.Get(ctx(), client.ObjectKey{Namespace: cl.Namespace, Name: memberlease.LeaseName(member)}, l)
	exists := err == nil
	l.Name, l.Namespace, l.Labels = memberlease.LeaseName(member), cl.Namespace, memberlease.Labels(cl.Name)
	if load != "" {
		l.Annotations = map[string]string{memberpod.AnnotationLoad: load}
	}
	l.Spec.HolderIdentity = ptr.To(member)
	l.Spec.LeaseDurationSeconds = ptr.To(leaseDuration(cl))
	l.Spec.RenewTime = &metav1.MicroTime{Time: renew}
	if exists {
		return k8s.Update(ctx(), l)
	}
	return k8s.Create(ctx(), l)
}

// startMembers starts every member and waits until the cluster status shows
// them Ready: the operator must have seen a member up before its loss counts
// as a failure (a member that never served holds nothing to move).
func startMembers(t *testing.T, cl *vpnv1alpha1.VPNCluster) {
	t.Helper()
	for i := range int(cl.Spec.Members) {
		startMember(t, cl, i)
	}
	want := fmt.Sprintf("%d/%d", cl.Spec.Members, cl.Spec.Members)
	eventually(t, wait, "members ready in the cluster status", func() error {
		if got := get(t, &vpnv1alpha1.VPNCluster{}, cl.Namespace, cl.Name).Status.Ready; got != want {
			return fmt.Errorf("ready %q, want %q", got, want)
		}
		return nil
	})
}

func newHub(t *testing.T, ns, name string, cl *vpnv1alpha1.VPNCluster, typ vpnv1alpha1.HubType) *vpnv1alpha1.VirtualHub {
	t.Helper()
	h := &vpnv1alpha1.VirtualHub{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: vpnv1alpha1.VirtualHubSpec{
			ClusterRef: vpnv1alpha1.ClusterReference{Name: cl.Name, Namespace: cl.Namespace},
			Type:       typ,
		},
	}
	if err := k8s.Create(ctx(), h); err != nil {
		t.Fatal(err)
	}
	return h
}

func get[T client.Object](t *testing.T, obj T, ns, name string) T {
	t.Helper()
	if err := k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// condIs checks a condition's status and reason.
func condIs(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string) error {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return fmt.Errorf("no %s condition", typ)
	}
	if c.Status != status || (reason != "" && c.Reason != reason) {
		return fmt.Errorf("%s is %s/%s (%s), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	}
	return nil
}

// eventFor finds an Event (events.k8s.io/v1) about the named object with
// reason, whose note contains every part.
func eventFor(ns, name, reason string, parts ...string) error {
	var list eventsv1.EventList
	if err := k8s.List(ctx(), &list, client.InNamespace(ns)); err != nil {
		return err
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Name != name {
			continue
		}
		seen = append(seen, e.Reason+": "+e.Note)
		if e.Reason != reason {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(e.Note, p)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("no %s Event on %s with %q; seen %q", reason, name, parts, seen)
}

// placedHub waits until a dynamic hub is assigned and Ready and returns it.
func placedHub(t *testing.T, ns, name string) *vpnv1alpha1.VirtualHub {
	t.Helper()
	h := &vpnv1alpha1.VirtualHub{}
	eventually(t, wait, "hub "+name+" placed and Ready", func() error {
		h = get(t, &vpnv1alpha1.VirtualHub{}, ns, name)
		if h.Status.AssignedMember == "" {
			return fmt.Errorf("not assigned: %+v", h.Status.Conditions)
		}
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonMemberReady)
	})
	return h
}
