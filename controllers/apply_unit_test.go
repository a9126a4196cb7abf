// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/scheme"
)

// An apply configuration names its kind and claims no status and no null
// (a typed object's creationTimestamp, its pod template's): either would make
// the operator own a field it never meant to set.
func TestUnitApplyConfig(t *testing.T) {
	cl := &vpnv1alpha1.VPNCluster{}
	cl.Namespace, cl.Name, cl.Spec.Members = "ns", "vpn", 3
	r := &VPNClusterReconciler{Scheme: scheme.New(), Options: Options{MemberImage: "hubfleet:test"}}
	u, gvk, err := applyConfig(r.Scheme, r.statefulSet(cl))
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "apps/v1" || u.GetKind() != "StatefulSet" || gvk.Kind != "StatefulSet" {
		t.Errorf("apiVersion %q kind %q", u.GetAPIVersion(), u.GetKind())
	}
	if _, ok := u.Object["status"]; ok {
		t.Error("status applied")
	}
	for _, path := range [][]string{{"metadata", "creationTimestamp"}, {"spec", "template", "metadata", "creationTimestamp"}} {
		if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, path...); ok {
			t.Errorf("%v applied", path)
		}
	}
	if n, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); n != 3 {
		t.Errorf("replicas %d", n)
	}
}
