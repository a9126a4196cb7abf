// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
)

// A VirtualHub's spec.userLimits reaches the member config of both hub
// types; limits written past the CRD's checks keep the hub from being served
// (fail closed, like an access list) with a problem that says why.
func TestDesiredCopiesUserLimits(t *testing.T) {
	id := &Identity{Cluster: "c", Name: "m-0", Namespace: "ns"}
	two := int32(2)
	limits := &vpnv1alpha1.UserLimitsSpec{MaxSessionsPerUser: &two,
		SessionRate: &vpnv1alpha1.SessionRateSpec{BitsPerSecond: resource.MustParse("100M")}}
	bad := &vpnv1alpha1.UserLimitsSpec{SessionRate: &vpnv1alpha1.SessionRateSpec{BitsPerSecond: resource.MustParse("10k")}}
	vh := func(name string, typ vpnv1alpha1.HubType, u *vpnv1alpha1.UserLimitsSpec) *vpnv1alpha1.VirtualHub {
		h := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		h.Spec.ClusterRef.Name, h.Spec.Type, h.Spec.UserLimits = "c", typ, u
		h.Status.AssignedMember = "m-0"
		h.Status.Instances = []vpnv1alpha1.HubInstance{{Member: "m-0", Ready: true}}
		return h
	}
	r := desired(id, member.Config{}, inputs{
		hubs: []*vpnv1alpha1.VirtualHub{
			vh("dyn", vpnv1alpha1.HubDynamic, limits), vh("static", vpnv1alpha1.HubStatic, limits),
			vh("none", vpnv1alpha1.HubDynamic, nil), vh("broken", vpnv1alpha1.HubDynamic, bad),
		},
		secret: func(string, string) (*corev1.Secret, bool) { return nil, true },
	})
	got := map[string]*vpnv1alpha1.UserLimitsSpec{}
	for _, h := range r.cfg.Hubs {
		got[h.Name] = h.UserLimits
	}
	if len(got) != 3 || got["ns/none"] != nil {
		t.Fatalf("hubs served and their userLimits: %v", got)
	}
	for _, name := range []string{"ns/dyn", "ns/static"} {
		u := got[name]
		if u == nil || *u.MaxSessionsPerUser != 2 || u.SessionRate.BitsPerSecond.Cmp(resource.MustParse("100M")) != 0 {
			t.Errorf("%s: userLimits %+v, want the VirtualHub's", name, u)
		}
	}
	if all := strings.Join(r.problems, "\n"); !strings.Contains(all, "hub ns/broken: userLimits: sessionRate.bitsPerSecond 10k must be at least 1M") {
		t.Errorf("problems do not explain the broken hub:\n%s", all)
	}
}
