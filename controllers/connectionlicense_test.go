// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

func newLicense(t *testing.T, cl *vpnv1alpha1.VPNCluster, name string, clients, bridges int32) *vpnv1alpha1.ConnectionLicense {
	t.Helper()
	l := &vpnv1alpha1.ConnectionLicense{
		ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: name},
		Spec: vpnv1alpha1.ConnectionLicenseSpec{
			ClusterRef:        vpnv1alpha1.ClusterReference{Name: cl.Name},
			ClientConnections: clients, BridgeConnections: bridges,
		},
	}
	if err := k8s.Create(ctx(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

// licenseIs checks the cluster-wide figures on one license and that the
// allocations never add up to more than the totals.
func licenseIs(t *testing.T, ns, name string, clientTotal, bridgeTotal, clientInUse, bridgeInUse int32) error {
	l := get(t, &vpnv1alpha1.ConnectionLicense{}, ns, name)
	st := l.Status
	if st.ClientTotal != clientTotal || st.BridgeTotal != bridgeTotal || st.ClientInUse != clientInUse || st.BridgeInUse != bridgeInUse {
		return fmt.Errorf("%s: totals %d/%d in use %d/%d; want %d/%d, %d/%d", name, st.ClientTotal, st.BridgeTotal, st.ClientInUse, st.BridgeInUse, clientTotal, bridgeTotal, clientInUse, bridgeInUse)
	}
	want := fmt.Sprintf("%d/%d", clientInUse, clientTotal)
	if st.Clients != want {
		return fmt.Errorf("clients column %q, want %q", st.Clients, want)
	}
	var c, b int32
	for _, a := range st.Allocations {
		c += a.Client
		b += a.Bridge
	}
	if len(st.Allocations) != 2 || c > clientTotal || b > bridgeTotal {
		return fmt.Errorf("allocations %+v exceed totals %d/%d", st.Allocations, clientTotal, bridgeTotal)
	}
	if c != clientTotal {
		return fmt.Errorf("allocations give out %d of %d client licenses with every member ready", c, clientTotal)
	}
	return condIs(st.Conditions, vpnv1alpha1.ConditionActive, metav1.ConditionTrue, ReasonCounted)
}

// License totals and allocations follow licenses being added and removed,
// and member load reports; Exhausted says which kind ran out.
func TestLicenseTotalsFollowLicenses(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 2, nil)
	startMembers(t, cl)

	newLicense(t, cl, "a", 10, 2)
	eventually(t, wait, "one license counted", func() error { return licenseIs(t, ns, "a", 10, 2, 0, 0) })

	newLicense(t, cl, "b", 5, 0)
	eventually(t, wait, "both licenses show the sum", func() error {
		if err := licenseIs(t, ns, "a", 15, 2, 0, 0); err != nil {
			return err
		}
		return licenseIs(t, ns, "b", 15, 2, 0, 0)
	})

	// Members report use through their Leases; two bridges use up the
	// bridge licenses.
	renewLease(t, cl, "vpn-member-0", metav1.Now().Time, `{"sessions":{"`+ns+`/h":{"client":4,"bridge":2}}}`)
	eventually(t, wait, "in-use counts and Exhausted", func() error {
		if err := licenseIs(t, ns, "b", 15, 2, 4, 2); err != nil {
			return err
		}
		l := get(t, &vpnv1alpha1.ConnectionLicense{}, ns, "b")
		if err := condIs(l.Status.Conditions, vpnv1alpha1.ConditionExhausted, metav1.ConditionTrue, ReasonExhausted); err != nil {
			return err
		}
		if msg := meta.FindStatusCondition(l.Status.Conditions, vpnv1alpha1.ConditionExhausted).Message; !strings.Contains(msg, "bridge connections 2/2") || strings.Contains(msg, "client") {
			return fmt.Errorf("Exhausted message %q should name the bridge licenses only", msg)
		}
		for _, a := range l.Status.Allocations {
			if a.Member == "vpn-member-0" && (a.Client < 4 || a.Bridge != 2 || a.ClientInUse != 4) {
				return fmt.Errorf("member 0 allocation %+v is below its use", a)
			}
		}
		return nil
	})

	if err := k8s.Delete(ctx(), &vpnv1alpha1.ConnectionLicense{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "removed license no longer counted", func() error {
		if err := licenseIs(t, ns, "b", 5, 0, 4, 2); err != nil {
			return err
		}
		l := get(t, &vpnv1alpha1.ConnectionLicense{}, ns, "b")
		// No bridge license left: the kind is not licensed, not exhausted,
		// and client use 4/5 is within the limit.
		return condIs(l.Status.Conditions, vpnv1alpha1.ConditionExhausted, metav1.ConditionFalse, ReasonWithinLimit)
	})
}

// allocationsAre waits for the client allocations of license name.
func allocationsAre(t *testing.T, ns, name string, want map[string]int32) {
	t.Helper()
	eventually(t, wait, fmt.Sprintf("client allocations %v", want), func() error {
		got := map[string]int32{}
		for _, a := range get(t, &vpnv1alpha1.ConnectionLicense{}, ns, name).Status.Allocations {
			got[a.Member] = a.Client
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("client allocations %v", got)
		}
		return nil
	})
}

// A license taken from one member goes to another only after the first
// confirms, in its Lease, that it applies the lower allocation: until then
// it may still be admitting under the old one (its use report is up to a
// renewal old), and handing the license on at once let three clients in on
// a license of two.
func TestLicenseMovesOnlyOnceReleased(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 2, nil)
	startMembers(t, cl)
	newLicense(t, cl, "two", 2, 0)
	allocationsAre(t, ns, "two", map[string]int32{"vpn-member-0": 1, "vpn-member-1": 1})

	// Both apply 1; member 0 admits its one session. The ideal split now
	// gives member 0 both licenses: member 1's is lowered to 0 at once, but
	// member 0 stays at 1 while member 1 still reports applying 1.
	renewLease(t, cl, "vpn-member-1", metav1.Now().Time, `{"licenses":{"client":1,"bridge":0}}`)
	renewLease(t, cl, "vpn-member-0", metav1.Now().Time, `{"sessions":{"`+ns+`/h":{"client":1}},"licenses":{"client":1,"bridge":0}}`)
	allocationsAre(t, ns, "two", map[string]int32{"vpn-member-0": 1, "vpn-member-1": 0})

	// Member 1 confirms 0: its license is member 0's now.
	renewLease(t, cl, "vpn-member-1", metav1.Now().Time, `{"licenses":{"client":0,"bridge":0}}`)
	allocationsAre(t, ns, "two", map[string]int32{"vpn-member-0": 2, "vpn-member-1": 0})
}
