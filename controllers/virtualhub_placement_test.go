// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// A dynamic hub is placed on a member and becomes Ready when that member is;
// a static hub gets an instance on every ready member.
func TestDynamicHubPlacedAndReadyWhenMemberIs(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 2, nil)

	// Before any member is up the hub cannot be placed, and says why.
	newHub(t, ns, "early", cl, vpnv1alpha1.HubDynamic)
	eventually(t, wait, "hub waits for a member", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, ns, "early")
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionScheduled, metav1.ConditionFalse, ReasonNoMemberAvailable)
	})

	startMember(t, cl, 0)
	startMember(t, cl, 1)
	h := placedHub(t, ns, "early")
	if len(h.Status.Instances) != 1 || h.Status.Instances[0].Member != h.Status.AssignedMember || !h.Status.Instances[0].Ready {
		t.Errorf("instances %+v for assigned member %s", h.Status.Instances, h.Status.AssignedMember)
	}
	if h.Status.Placement != h.Status.AssignedMember || h.Status.ObservedGeneration != h.Generation {
		t.Errorf("placement %q observedGeneration %d", h.Status.Placement, h.Status.ObservedGeneration)
	}
	if h.Status.LastReassignment != nil {
		t.Errorf("a first placement is not a reassignment: %+v", h.Status.LastReassignment)
	}
	eventually(t, wait, "Placed Event", func() error { return eventFor(ns, "early", ReasonPlaced, h.Status.AssignedMember) })

	// A second hub goes to the other, idler member.
	newHub(t, ns, "second", cl, vpnv1alpha1.HubDynamic)
	h2 := placedHub(t, ns, "second")
	if h2.Status.AssignedMember == h.Status.AssignedMember {
		t.Errorf("both hubs on %s; the second should go to the member with fewer hubs", h.Status.AssignedMember)
	}

	newHub(t, ns, "lan", cl, vpnv1alpha1.HubStatic)
	eventually(t, wait, "static hub on every member", func() error {
		s := get(t, &vpnv1alpha1.VirtualHub{}, ns, "lan")
		if len(s.Status.Instances) != 2 || s.Status.Placement != "2 members" || s.Status.AssignedMember != "" {
			return fmt.Errorf("instances %+v placement %q", s.Status.Instances, s.Status.Placement)
		}
		return condIs(s.Status.Conditions, vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonInstancesReady)
	})

	// Member load reports reach the hub status.
	renewLease(t, cl, h.Status.AssignedMember, metav1.Now().Time, `{"sessions":{"`+ns+`/early":{"client":3,"bridge":1}}}`)
	eventually(t, wait, "sessions from the member's Lease", func() error {
		got := get(t, &vpnv1alpha1.VirtualHub{}, ns, "early")
		if got.Status.Sessions != 4 || got.Status.Instances[0].Sessions != 4 {
			return fmt.Errorf("sessions %d instances %+v", got.Status.Sessions, got.Status.Instances)
		}
		return nil
	})
}

// A hub in a namespace the cluster does not admit is refused with a reason
// naming the rule; a Selector cluster admits a labelled namespace.
func TestHubInUnadmittedNamespaceIsRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	other := newNamespace(t, nil)
	tenant := newNamespace(t, map[string]string{"vpn-tenant": "yes"})
	same := newCluster(t, ns, "same", 1, nil)
	sel := newCluster(t, ns, "sel", 1, func(c *vpnv1alpha1.VPNCluster) {
		c.Spec.HubNamespaces = vpnv1alpha1.HubNamespaces{From: vpnv1alpha1.NamespacesFromSelector,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"vpn-tenant": "yes"}}}
	})
	startMember(t, same, 0)
	startMember(t, sel, 0)

	newHub(t, other, "refused", same, vpnv1alpha1.HubDynamic)
	newHub(t, other, "unlabelled", sel, vpnv1alpha1.HubDynamic)
	newHub(t, tenant, "admitted", sel, vpnv1alpha1.HubDynamic)

	eventually(t, wait, "hub refused by hubNamespaces.from Same", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, other, "refused")
		if err := condIs(h.Status.Conditions, vpnv1alpha1.ConditionScheduled, metav1.ConditionFalse, ReasonNamespaceNotAdmitted); err != nil {
			return err
		}
		c := h.Status.Conditions[0]
		for _, c2 := range h.Status.Conditions {
			if c2.Type == vpnv1alpha1.ConditionScheduled {
				c = c2
			}
		}
		if !strings.Contains(c.Message, "hubNamespaces.from: Same") || h.Status.AssignedMember != "" {
			return fmt.Errorf("message %q assigned %q", c.Message, h.Status.AssignedMember)
		}
		return nil
	})
	eventually(t, wait, "hub refused by hubNamespaces.selector", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, other, "unlabelled")
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionScheduled, metav1.ConditionFalse, ReasonNamespaceNotAdmitted)
	})
	eventually(t, wait, "NotAdmitted Event", func() error {
		return eventFor(other, "refused", ReasonNamespaceNotAdmitted, "hubNamespaces.from: Same")
	})
	placedHub(t, tenant, "admitted")
}

// hubStatusEqual must see every field, or a changed status would never be
// written: change each field of a full status in turn.
func TestHubStatusEqualSeesEveryField(t *testing.T) {
	now := metav1.Now()
	full := func() vpnv1alpha1.VirtualHubStatus {
		return vpnv1alpha1.VirtualHubStatus{
			ObservedGeneration: 1, AssignedMember: "m", Placement: "m", Sessions: 1, LocalBridge: "b", LocalBridgeEligible: []string{"b"}, DHCPServer: "d",
			Instances:        []vpnv1alpha1.HubInstance{{Member: "m", Sessions: 1, Ready: true}},
			LastReassignment: &vpnv1alpha1.Reassignment{From: "a", To: "m", Reason: "r", Time: now},
			Conditions:       []metav1.Condition{{Type: "Ready", Status: "True", Reason: "r", Message: "x", ObservedGeneration: 1, LastTransitionTime: now}},
			SessionList:      []vpnv1alpha1.HubSession{{ID: "s", Member: "m", User: "u"}},
			SessionReports:   []vpnv1alpha1.SessionReport{{Member: "m", Sessions: 1, Listed: 1}},
		}
	}
	a, b := full(), full()
	if !hubStatusEqual(&a, &b) {
		t.Fatal("equal statuses compare unequal")
	}
	edits := []func(*vpnv1alpha1.VirtualHubStatus){
		func(s *vpnv1alpha1.VirtualHubStatus) { s.ObservedGeneration = 2 },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.AssignedMember = "n" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.Placement = "n" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.Sessions = 2 },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.LocalBridge = "" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.LocalBridgeEligible = nil },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.DHCPServer = "" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.Instances[0].Ready = false },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.Instances = nil },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.LastReassignment = nil },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.LastReassignment.Reason = "q" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.Conditions[0].Message = "y" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.Conditions[0].Status = "False" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.Conditions = nil },
		// Session entries count by identity (the operator only drops them).
		func(s *vpnv1alpha1.VirtualHubStatus) { s.SessionList = nil },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.SessionList[0].Member = "n" },
		func(s *vpnv1alpha1.VirtualHubStatus) { s.SessionReports = nil },
	}
	// Every field of the status type must be covered by an edit above.
	if n := reflect.TypeOf(vpnv1alpha1.VirtualHubStatus{}).NumField(); n != 12 {
		t.Fatalf("VirtualHubStatus has %d fields; update hubStatusEqual and this test", n)
	}
	for i, edit := range edits {
		c := full()
		edit(&c)
		if hubStatusEqual(&a, &c) || hubStatusEqual(&c, &a) {
			t.Errorf("edit %d not detected", i)
		}
	}
}

// Hubs applied with their cluster wait for the members still starting rather
// than all landing on the first member that is ready, and then spread.
func TestNewHubsWaitForStartingMembers(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 3, nil)
	for _, n := range []string{"a", "b", "c"} {
		newHub(t, ns, n, cl, vpnv1alpha1.HubDynamic)
	}
	startMember(t, cl, 0)
	eventually(t, wait, "hubs wait for the starting members", func() error {
		for _, n := range []string{"a", "b", "c"} {
			h := get(t, &vpnv1alpha1.VirtualHub{}, ns, n)
			if h.Status.AssignedMember != "" {
				return fmt.Errorf("hub %s placed on %s with 2 of 3 members starting", n, h.Status.AssignedMember)
			}
			if err := condIs(h.Status.Conditions, vpnv1alpha1.ConditionScheduled, metav1.ConditionFalse, ReasonWaitingForMembers); err != nil {
				return fmt.Errorf("hub %s: %w", n, err)
			}
		}
		return nil
	})
	startMember(t, cl, 1)
	startMember(t, cl, 2)
	on := map[string]bool{}
	for _, n := range []string{"a", "b", "c"} {
		on[placedHub(t, ns, n).Status.AssignedMember] = true
	}
	if len(on) != 3 {
		t.Fatalf("3 new hubs on members %v; want one on each", on)
	}
}
