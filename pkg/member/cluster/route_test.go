// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// TestStaticSessionRouting: a login for a static hub stays on the entry
// member while it has room, goes to the member with the better point once
// the entry is clearly busier, and goes to a member with a free license when
// the entry's allocation is used up — where without routing it would be
// refused "license exhausted" while the cluster still had licenses.
func TestStaticSessionRouting(t *testing.T) {
	ns := fixture(t)
	vc := &vpnv1alpha1.VPNCluster{}
	if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: "vpn"}, vc); err != nil {
		t.Fatal(err)
	}
	// Ten sessions per member: one session is worth 10000 points, far over
	// placement.StayMargin, so a single session tips the balance.
	vc.Spec.MaxSessionsPerMember = 10
	if err := k8s.Update(bg(), vc); err != nil {
		t.Fatal(err)
	}
	setClusterMembers(t, vc, []vpnv1alpha1.MemberStatus{
		{Name: "vpn-member-0", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100},
		{Name: "vpn-member-1", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100},
	})
	both := []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}, {Member: "vpn-member-1"}}
	newHub(t, ns, "lan", vpnv1alpha1.HubStatic)
	setStatus(t, ns, "lan", vpnv1alpha1.VirtualHubStatus{Instances: both})
	m0, m1, _ := meshPair(t, ns)
	lan := ns + "/lan"

	// Both idle: the first login stays where it arrived.
	m0.mustLogin(t, lan, "alice")
	sessionsAre(t, m0, m1, lan, 1, 0)

	// m0 holds one session, m1 (by its reported status) none: the next
	// login at m0 goes to m1 over the mesh.
	m0.mustLogin(t, lan, "bob")
	sessionsAre(t, m0, m1, lan, 1, 1)

	// Licenses: m0 may admit 1 client (in use: 1), m1 4 (in use: 1). Report
	// m1 as busier so only the license decides: a login at m0 must still be
	// admitted, on m1.
	setClusterMembers(t, vc, []vpnv1alpha1.MemberStatus{
		{Name: "vpn-member-0", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100},
		{Name: "vpn-member-1", PodIP: "127.0.0.1", Ready: true, State: "Ready", Weight: 100, Sessions: 5},
	})
	lic := &vpnv1alpha1.ConnectionLicense{}
	lic.Namespace, lic.Name = ns, "lic"
	lic.Spec = vpnv1alpha1.ConnectionLicenseSpec{ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, ClientConnections: 5}
	create(t, lic)
	patch := client.RawPatch("application/merge-patch+json", mustJSON(t, map[string]any{"status": vpnv1alpha1.ConnectionLicenseStatus{
		Allocations: []vpnv1alpha1.LicenseAllocation{
			{Member: "vpn-member-0", Client: 1, ClientInUse: 1},
			{Member: "vpn-member-1", Client: 4, ClientInUse: 1},
		},
	}}))
	if err := k8s.Status().Patch(bg(), lic, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "m0 learns its allocation of 1", func() error {
		if a := m0.m.Server().Licenses(); a.ClientAllocation != 1 {
			return fmt.Errorf("allocation %d", a.ClientAllocation)
		}
		return nil
	})
	m0.mustLogin(t, lan, "alice")
	sessionsAre(t, m0, m1, lan, 1, 2)

	// No member with a free license left as far as the operator's figures
	// say; in truth m1 has 2 free (allocation 4, 2 in use). m0 borrows them
	// (loans.go) rather than refuse, and refuses once all 5 are in use.
	patch = client.RawPatch("application/merge-patch+json", mustJSON(t, map[string]any{"status": vpnv1alpha1.ConnectionLicenseStatus{
		Allocations: []vpnv1alpha1.LicenseAllocation{
			{Member: "vpn-member-0", Client: 1, ClientInUse: 1},
			{Member: "vpn-member-1", Client: 4, ClientInUse: 4},
		},
	}}))
	if err := k8s.Status().Patch(bg(), lic, patch); err != nil {
		t.Fatal(err)
	}
	admitted := 0
	for {
		se, err := m0.login(lan, "bob")
		if err != nil {
			if le, ok := errors.AsType[*protocol.LoginError](err); !ok || le.Code != protocol.LicenseExhausted || !strings.Contains(le.Message, "every client connection license of the cluster is in use") {
				t.Fatalf("login refused with %v, want license exhausted for the whole cluster", err)
			}
			break
		}
		t.Cleanup(func() { se.conn.Close() })
		if admitted++; admitted > 2 {
			t.Fatalf("%d more sessions admitted on a license of 5 with 3 in use", admitted)
		}
	}
	if admitted != 2 {
		t.Fatalf("refused after %d more sessions with 2 licenses free in the cluster", admitted)
	}
	eventually(t, 10*time.Second, "5 sessions of lan in the cluster", func() error {
		if n := hubClients(m0.m.Server().Stats().Hubs, lan) + hubClients(m1.m.Server().Stats().Hubs, lan); n != 5 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
}

// sessionsAre waits until m0 and m1 run want0 and want1 client sessions of hub.
func sessionsAre(t *testing.T, m0, m1 *runner, hub string, want0, want1 int) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%s sessions: %d on m0, %d on m1", hub, want0, want1), func() error {
		got0, got1 := hubClients(m0.m.Server().Stats().Hubs, hub), hubClients(m1.m.Server().Stats().Hubs, hub)
		if got0 != want0 || got1 != want1 {
			return fmt.Errorf("%d on m0, %d on m1", got0, got1)
		}
		return nil
	})
}
