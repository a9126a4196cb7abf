// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package v1alpha1 contains the hubfleet API: VPNCluster, VirtualHub and ConnectionLicense.
//
// +kubebuilder:object:generate=true
// +groupName=vpn.hubfleet.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The registration is apimachinery's own rather than controller-runtime's
// scheme.Builder (deprecated): an API package should need nothing beyond
// apimachinery, so clients can import it without pulling in controller-runtime.
var (
	// GroupVersion is the group and version of every hubfleet resource.
	GroupVersion = schema.GroupVersion{Group: "vpn.hubfleet.io", Version: "v1alpha1"}

	// SchemeBuilder registers the hubfleet types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the hubfleet types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// knownTypes is filled by each *_types.go file's init, next to the type it
// registers, so adding a kind is one edit in one file.
var knownTypes []runtime.Object

func register(objs ...runtime.Object) { knownTypes = append(knownTypes, objs...) }

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
