// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConnectionLicenseSpec is a number of connections bought for one cluster. Several
// licenses for one cluster add up; a cluster with no license is unlimited.
// +kubebuilder:validation:XValidation:rule="self.clientConnections + self.bridgeConnections > 0",message="a license must grant at least one connection: set clientConnections or bridgeConnections above 0"
type ConnectionLicenseSpec struct {
	// clusterRef names the VPNCluster the license is for.
	// +required
	ClusterRef ClusterReference `json:"clusterRef"`

	// clientConnections: concurrent client sessions (`hubfleet connect`).
	// +kubebuilder:default=0
	// +kubebuilder:validation:Maximum=10000000
	// +kubebuilder:validation:XValidation:rule="self >= 0",message="clientConnections cannot be negative"
	// +optional
	ClientConnections int32 `json:"clientConnections"`

	// bridgeConnections: concurrent bridge and cascade sessions (`hubfleet bridge`).
	// +kubebuilder:default=0
	// +kubebuilder:validation:Maximum=10000000
	// +kubebuilder:validation:XValidation:rule="self >= 0",message="bridgeConnections cannot be negative"
	// +optional
	BridgeConnections int32 `json:"bridgeConnections"`
}

// LicenseAllocation is one member's share of the cluster's licenses.
type LicenseAllocation struct {
	// member the allocation is for.
	Member string `json:"member"`
	// client licenses the member may use.
	Client int32 `json:"client"`
	// bridge licenses the member may use.
	Bridge int32 `json:"bridge"`
	// clientInUse on the member.
	// +optional
	ClientInUse int32 `json:"clientInUse,omitempty"`
	// bridgeInUse on the member.
	// +optional
	BridgeInUse int32 `json:"bridgeInUse,omitempty"`
}

// ConnectionLicenseStatus is the observed state of a cluster's licenses. Totals and
// allocations are the cluster's (every license of one cluster shows the same figures).
type ConnectionLicenseStatus struct {
	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// clients is "inUse/total" client connections of the cluster, for kubectl get.
	// +optional
	Clients string `json:"clients,omitempty"`
	// bridges is "inUse/total" bridge connections of the cluster, for kubectl get.
	// +optional
	Bridges string `json:"bridges,omitempty"`
	// clientTotal across all licenses of the cluster.
	// +optional
	ClientTotal int32 `json:"clientTotal,omitempty"`
	// bridgeTotal across all licenses of the cluster.
	// +optional
	BridgeTotal int32 `json:"bridgeTotal,omitempty"`
	// clientInUse across the cluster.
	// +optional
	ClientInUse int32 `json:"clientInUse,omitempty"`
	// bridgeInUse across the cluster.
	// +optional
	BridgeInUse int32 `json:"bridgeInUse,omitempty"`
	// allocations per member; their sum never exceeds the totals.
	// +listType=map
	// +listMapKey=member
	// +optional
	Allocations []LicenseAllocation `json:"allocations,omitempty"`
	// conditions: Active, Exhausted.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConnectionLicense is a number of client and bridge connections bought for a cluster.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vpnlic;cl,categories=hubfleet
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterRef.name`
// +kubebuilder:printcolumn:name="Clients",type=string,JSONPath=`.status.clients`,description="client connections in use / total of the cluster"
// +kubebuilder:printcolumn:name="Bridges",type=string,JSONPath=`.status.bridges`,description="bridge connections in use / total of the cluster"
// +kubebuilder:printcolumn:name="Exhausted",type=string,JSONPath=`.status.conditions[?(@.type=="Exhausted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ConnectionLicense struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   ConnectionLicenseSpec   `json:"spec"`
	Status ConnectionLicenseStatus `json:"status,omitempty"`
}

// ConnectionLicenseList is a list of ConnectionLicenses.
// +kubebuilder:object:root=true
type ConnectionLicenseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ConnectionLicense `json:"items"`
}

func init() {
	register(&ConnectionLicense{}, &ConnectionLicenseList{})
}
