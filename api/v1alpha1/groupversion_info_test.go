// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// AddToScheme must register every kind and its list with this group and
// version, and the meta types a client needs for watch and delete options:
// a kind left out fails only at run time, as "no kind is registered".
func TestAddToSchemeRegistersEveryKind(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []runtime.Object{
		&VPNCluster{}, &VPNClusterList{},
		&VirtualHub{}, &VirtualHubList{},
		&ConnectionLicense{}, &ConnectionLicenseList{},
	} {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil {
			t.Errorf("%T: %v", obj, err)
			continue
		}
		if len(gvks) != 1 || gvks[0].GroupVersion() != GroupVersion {
			t.Errorf("%T registered as %v, want one kind in %s", obj, gvks, GroupVersion)
		}
	}
	if !s.Recognizes(GroupVersion.WithKind("WatchEvent")) {
		t.Error("the meta types (WatchEvent, ListOptions) are not registered for the group version")
	}
}
