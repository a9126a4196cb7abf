// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
)

// A Dynamic hub's spec.dhcp reaches the member config; a Static hub's is
// refused with a problem saying why and what to do, and the hub is still
// served; a pool written past the CRD's checks is left out, not the hub.
func TestDesiredCopiesDHCP(t *testing.T) {
	id := &Identity{Cluster: "c", Name: "m-0", Namespace: "ns"}
	pool := &vpnv1alpha1.DHCPSpec{Prefix: "10.8.0.0/24", RangeStart: "10.8.0.10", RangeEnd: "10.8.0.20"}
	bad := &vpnv1alpha1.DHCPSpec{Prefix: "10.8.0.0/24", RangeStart: "10.8.0.30", RangeEnd: "10.8.0.20"}
	vh := func(name string, typ vpnv1alpha1.HubType, d *vpnv1alpha1.DHCPSpec) *vpnv1alpha1.VirtualHub {
		h := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		h.Spec.ClusterRef.Name, h.Spec.Type, h.Spec.DHCP = "c", typ, d
		h.Status.AssignedMember = "m-0"
		h.Status.Instances = []vpnv1alpha1.HubInstance{{Member: "m-0", Ready: true}}
		return h
	}
	r := desired(id, member.Config{}, inputs{
		hubs: []*vpnv1alpha1.VirtualHub{
			vh("dyn", vpnv1alpha1.HubDynamic, pool), vh("static", vpnv1alpha1.HubStatic, pool), vh("broken", vpnv1alpha1.HubDynamic, bad),
		},
		secret: func(string, string) (*corev1.Secret, bool) { return nil, true },
	})
	got := map[string]*vpnv1alpha1.DHCPSpec{}
	for _, h := range r.cfg.Hubs {
		got[h.Name] = h.DHCP
	}
	if len(got) != 3 || got["ns/dyn"] != pool || got["ns/static"] != nil || got["ns/broken"] != nil {
		t.Fatalf("hubs and their dhcp: %v", got)
	}
	all := strings.Join(r.problems, "\n")
	for _, want := range []string{
		"hub ns/static: dhcp is not served on a Static hub yet",
		"use a Dynamic hub for DHCP, or give clients --address",
		"hub ns/broken: dhcp: rangeStart 10.8.0.30 is not below rangeEnd 10.8.0.20",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not say %q:\n%s", want, all)
		}
	}
	if err := r.cfg.Validate(); err != nil && strings.Contains(err.Error(), "dhcp") {
		t.Fatalf("the computed config's dhcp is refused by the member: %v", err)
	}
}
