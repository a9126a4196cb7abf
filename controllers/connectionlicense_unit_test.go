// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/license"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
)

// The pure decisions of the license reconciler. The split itself is
// pkg/license's (Allocate, Safe); these are the inputs the controller hands
// it and the status of a license that does not count.

// heldLicenses is the never-oversubscribe input: whatever a member may still
// be admitting with. Every license object carries the allocations, but a pass
// may have written only some of them, so the highest written figure counts.
func TestUnitHeldLicenses(t *testing.T) {
	alloc := func(member string, client, bridge int32) vpnv1alpha1.LicenseAllocation {
		return vpnv1alpha1.LicenseAllocation{Member: member, Client: client, Bridge: bridge}
	}
	items := []vpnv1alpha1.ConnectionLicense{
		{Status: vpnv1alpha1.ConnectionLicenseStatus{Allocations: []vpnv1alpha1.LicenseAllocation{alloc(m0, 3, 1), alloc(m1, 2, 0)}}},
		// Written by a later pass that lowered m0 and raised m1's client share.
		{Status: vpnv1alpha1.ConnectionLicenseStatus{Allocations: []vpnv1alpha1.LicenseAllocation{alloc(m0, 1, 2), alloc(m1, 4, 0)}}},
	}
	reporting := readyMember(m0)
	reporting.Client, reporting.Bridge = 1, 1
	reporting.Load = memberlease.Load{Licenses: &memberlease.Allocation{Client: 2, Bridge: 1}}
	// m1 reports no applied allocation (an older member, or one admitting
	// without limit); m2 was just added and has nothing written yet.
	silent := readyMember(m1)
	silent.Client = 3
	members := []memberView{reporting, silent, startingMember(m2, "starting: pod not created yet")}

	client, bridge := heldLicenses(members, items)
	wantClient := []license.Held{
		{Member: m0, Written: 3, Applied: 2, InUse: 1, Ready: true},
		{Member: m1, Written: 4, Applied: -1, InUse: 3, Ready: true},
		{Member: m2, Written: 0, Applied: -1, InUse: 0},
	}
	wantBridge := []license.Held{
		{Member: m0, Written: 2, Applied: 1, InUse: 1, Ready: true},
		{Member: m1, Written: 0, Applied: -1, InUse: 0, Ready: true},
		{Member: m2, Written: 0, Applied: -1, InUse: 0},
	}
	if !slices.Equal(client, wantClient) {
		t.Errorf("client held\n got  %+v\n want %+v", client, wantClient)
	}
	if !slices.Equal(bridge, wantBridge) {
		t.Errorf("bridge held\n got  %+v\n want %+v", bridge, wantBridge)
	}
}

// Loans count once, at the lender: the most its own report or its
// borrowers' show, taken off a borrower's use only for lenders that are
// still members (a gone lender reserves nothing, so the borrower's sessions
// on its licenses count at the borrower).
func TestUnitHeldLicensesLoans(t *testing.T) {
	lender := readyMember(m0)
	lender.Load = memberlease.Load{Licenses: &memberlease.Allocation{Client: 2}, Lent: &memberlease.Allocation{Client: 1}}
	borrower := readyMember(m1)
	borrower.Client = 4
	borrower.Load = memberlease.Load{Licenses: &memberlease.Allocation{Client: 1},
		Borrowed: map[string]memberlease.HubLoad{m0: {Client: 2}, m2: {Client: 1}, "gone": {Client: 1}}}
	other := readyMember(m2)
	other.Load = memberlease.Load{Licenses: &memberlease.Allocation{Client: 1}}
	client, _ := heldLicenses([]memberView{lender, borrower, other}, nil)
	want := []license.Held{
		{Member: m0, Applied: 2, Lent: 2, Ready: true},
		{Member: m1, Applied: 1, InUse: 4, Borrowed: 3, Ready: true},
		{Member: m2, Applied: 1, Lent: 1, Ready: true},
	}
	if !slices.Equal(client, want) {
		t.Errorf("client held\n got  %+v\n want %+v", client, want)
	}
}

// Each ready member gets a tenth of the total as spare, shared out, and at
// least one license: a member can then admit a new session before the
// operator's next pass.
func TestUnitLicenseHeadroom(t *testing.T) {
	for _, tc := range []struct{ total, members, want int }{
		{total: 5, members: 3, want: 1},
		{total: 100, members: 2, want: 5},
		{total: 1000, members: 3, want: 33},
		{total: 100, members: 0, want: 10},
		{total: 0, members: 3, want: 1},
	} {
		if got := licenseHeadroom(tc.total, tc.members); got != tc.want {
			t.Errorf("licenseHeadroom(%d, %d) = %d; want %d", tc.total, tc.members, got, tc.want)
		}
	}
}

// A license that is not counted says why in its Active condition, and an
// Exhausted condition from when it counted goes away: it no longer limits
// anything, so it cannot be exhausted.
func TestUnitInactiveLicense(t *testing.T) {
	l := &vpnv1alpha1.ConnectionLicense{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "seats", Generation: 4},
		Status: vpnv1alpha1.ConnectionLicenseStatus{
			ClientTotal: 5, ClientInUse: 5, Clients: "5/5",
			Allocations: []vpnv1alpha1.LicenseAllocation{{Member: m0, Client: 5}},
			Conditions: []metav1.Condition{
				condition(vpnv1alpha1.ConditionActive, metav1.ConditionTrue, ReasonCounted, "counted with 1 licenses", unitT0),
				condition(vpnv1alpha1.ConditionExhausted, metav1.ConditionTrue, ReasonExhausted, "licenses exhausted: client connections 5/5 in use", unitT0),
			},
		},
	}
	const msg = "namespace tenant is not admitted by VPNCluster hubfleet/vpn (hubNamespaces.from: Same)"
	st := inactive(l, ReasonNamespaceNotAdmitted, msg)

	checkCondition(t, st.Conditions, vpnv1alpha1.ConditionActive, wantCondition{metav1.ConditionFalse, ReasonNamespaceNotAdmitted, msg})
	if c := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionActive); c != nil && c.ObservedGeneration != 4 {
		t.Errorf("Active observedGeneration %d; want the license's 4", c.ObservedGeneration)
	}
	if c := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionExhausted); c != nil {
		t.Errorf("an inactive license still reports %s %s", c.Type, c.Reason)
	}
	if st.ClientTotal != 0 || st.ClientInUse != 0 || st.Clients != "" || len(st.Allocations) != 0 {
		t.Errorf("an inactive license keeps totals or allocations: %+v", st)
	}
	if meta.FindStatusCondition(l.Status.Conditions, vpnv1alpha1.ConditionExhausted) == nil {
		t.Error("inactive changed the license's current conditions in place")
	}
}
