// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package v1alpha1 contains the hubfleet API: VPNCluster, VirtualHub and ConnectionLicense.
//
// +kubebuilder:object:generate=true
// +groupName=vpn.hubfleet.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every hubfleet resource.
	GroupVersion = schema.GroupVersion{Group: "vpn.hubfleet.io", Version: "v1alpha1"}

	// SchemeBuilder registers the hubfleet types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the hubfleet types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
