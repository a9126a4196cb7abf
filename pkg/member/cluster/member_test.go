// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDynamicHubFollowsPlacement: the member serves a dynamic hub exactly
// while its status names the member, reports the session on its Lease,
// admits within its license allocation, and shuts the session down when the
// hub moves away.
func TestDynamicHubFollowsPlacement(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "corp", vpnv1alpha1.HubDynamic)
	r := startMember(t, ns, "vpn-member-0", env.Config)
	hub := ns + "/corp"

	// Not placed yet: the member does not have the hub.
	eventually(t, 15*time.Second, "first Lease renewal", func() error {
		if r.m.State().LastRenew.IsZero() {
			return errors.New("not renewed")
		}
		return nil
	})
	r.refusedWith(t, hub, "alice", protocol.UnknownHub, protocol.NotServedHere)

	setStatus(t, ns, "corp", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	s1 := r.mustLogin(t, hub, "alice")
	r.refusedWith(t, hub, "mallory", protocol.BadCredentials) // the malformed entry was left out

	// The Lease: named after the pod, labelled, held by it, owned by the
	// VPNCluster (not the pod), and
	// carrying the session within a renewal or two.
	eventually(t, 10*time.Second, "Lease load shows the client session", func() error {
		var l coordinationv1.Lease
		if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: memberlease.LeaseName("vpn-member-0")}, &l); err != nil {
			return err
		}
		switch {
		case l.Labels[memberpod.LabelCluster] != "vpn":
			return fmt.Errorf("labels %v", l.Labels)
		case l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "vpn-member-0":
			return errors.New("holderIdentity not the pod")
		case l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 3:
			return errors.New("leaseDurationSeconds not 3")
		case len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "VPNCluster" || l.OwnerReferences[0].Name != "vpn" ||
			l.OwnerReferences[0].UID != clusterUID(t, ns) || ptr.Deref(l.OwnerReferences[0].Controller, false):
			// Owned by the cluster (collected with it), never by the pod.
			t.Fatalf("the Lease has owner references %+v, want the VPNCluster only", l.OwnerReferences)
		}
		load, err := memberlease.Decode(l.Annotations[memberpod.AnnotationLoad])
		if err != nil {
			return err
		}
		if got := load.Sessions[hub]; got != (memberlease.HubLoad{Client: 1}) {
			return fmt.Errorf("load %s", l.Annotations[memberpod.AnnotationLoad])
		}
		return nil
	})

	// A license with an allocation of one client for this member: the second
	// login is refused. Without the license the cluster is unlimited again.
	lic := &vpnv1alpha1.ConnectionLicense{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lic"},
		Spec:       vpnv1alpha1.ConnectionLicenseSpec{ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, ClientConnections: 2},
	}
	create(t, lic)
	patch := client.RawPatch("application/merge-patch+json", mustJSON(t, map[string]any{"status": vpnv1alpha1.ConnectionLicenseStatus{
		Allocations: []vpnv1alpha1.LicenseAllocation{{Member: "vpn-member-0", Client: 1}, {Member: "vpn-member-1", Client: 1}},
	}}))
	if err := k8s.Status().Patch(bg(), lic, patch); err != nil {
		t.Fatal(err)
	}
	r.refusedWith(t, hub, "bob", protocol.LicenseExhausted)
	eventually(t, 10*time.Second, "allocation applied", func() error {
		if a := r.m.Server().Stats().Licenses; a.ClientAllocation != 1 {
			return fmt.Errorf("client allocation %d", a.ClientAllocation)
		}
		return nil
	})
	if err := k8s.Delete(bg(), lic); err != nil {
		t.Fatal(err)
	}
	s2 := r.mustLogin(t, hub, "bob")
	s2.conn.Close()

	// Moved to another member: the session is told to reconnect, new logins miss.
	setStatus(t, ns, "corp", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})
	s1.shutDown(t, 10*time.Second)
	r.refusedWith(t, hub, "alice", protocol.NotServedHere)
}

// leaseBlocker fails every Lease request while on: a deterministic stand-in
// for an API server the member cannot reach (the rest of the API still works,
// so only the fence can explain what the member does).
type leaseBlocker struct {
	on   atomic.Bool
	next http.RoundTripper
}

func (b *leaseBlocker) RoundTrip(req *http.Request) (*http.Response, error) {
	if b.on.Load() && strings.Contains(req.URL.Path, "/leases") {
		return nil, errors.New("test: Lease requests blocked")
	}
	return b.next.RoundTrip(req)
}

// TestFencing: when renewals fail for the lease duration the dynamic hub's
// session is shut down and new logins are refused while the static hub keeps
// its session and admits; once renewals succeed again the dynamic hub is back.
func TestFencing(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	newHub(t, ns, "stat", vpnv1alpha1.HubStatic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	setStatus(t, ns, "stat", vpnv1alpha1.VirtualHubStatus{Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}, {Member: "vpn-member-1"}}})

	blocker := &leaseBlocker{}
	rc := rest.CopyConfig(env.Config)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { blocker.next = rt; return blocker }
	r := startMember(t, ns, "vpn-member-0", rc)
	dyn, stat := r.mustLogin(t, ns+"/dyn", "alice"), r.mustLogin(t, ns+"/stat", "alice")

	blocked := time.Now()
	blocker.on.Store(true)
	dyn.shutDown(t, 10*time.Second)
	// The last renewal was at most one interval (1 s) before the block, so the
	// fence cannot have come sooner than duration − interval after it.
	if d := time.Since(blocked); d < 2*time.Second-100*time.Millisecond {
		t.Fatalf("fenced %v after renewals started failing; the lease lasts 3 s", d)
	}
	if !r.m.State().Fenced {
		t.Fatal("State().Fenced is false after the fence")
	}
	r.refusedWith(t, ns+"/dyn", "alice", protocol.NotServedHere)
	stat2 := r.mustLogin(t, ns+"/stat", "bob")
	select {
	case err := <-stat.end:
		t.Fatalf("the static hub's session ended while fenced: %v", err)
	default:
	}

	blocker.on.Store(false)
	r.mustLogin(t, ns+"/dyn", "bob")
	if r.m.State().Fenced {
		t.Fatal("State().Fenced still true after serving the dynamic hub again")
	}
	stat2.conn.Close()
}

func clusterUID(t *testing.T, ns string) types.UID {
	t.Helper()
	var vc vpnv1alpha1.VPNCluster
	if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: "vpn"}, &vc); err != nil {
		t.Fatal(err)
	}
	return vc.UID
}
