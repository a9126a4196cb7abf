// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package v1alpha1

import "github.com/hubfleet/hubfleet/pkg/sessionkind"

// ClusterReference names the VPNCluster a hub or license belongs to.
// +kubebuilder:validation:XValidation:rule="size(self.name) > 0",message="clusterRef.name is required: name the VPNCluster this object belongs to"
type ClusterReference struct {
	// name of the VPNCluster.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="size(self) == 0 || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="clusterRef.name must be a VPNCluster name: lowercase letters, digits and '-', starting and ending with a letter or digit"
	// +required
	Name string `json:"name"`

	// namespace of the VPNCluster; defaults to the namespace of the referring object.
	// The cluster's spec.hubNamespaces decides whether it admits objects from other namespaces.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// SessionKind is the kind of a VPN session; it decides which license a session uses.
// +kubebuilder:validation:Enum=Client;Bridge
type SessionKind string

const (
	// SessionClient is a remote-access client session (`hubfleet connect`): a client license.
	SessionClient SessionKind = "Client"
	// SessionBridge is a bridge or cascade session (`hubfleet bridge`): a bridge license.
	SessionBridge SessionKind = "Bridge"
)

// Kind converts the API's spelling to the one session-kind type the rest of
// hubfleet uses; an unknown value (the enum forbids it) is the invalid zero Kind.
func (k SessionKind) Kind() sessionkind.Kind {
	switch k {
	case SessionClient:
		return sessionkind.Client
	case SessionBridge:
		return sessionkind.Bridge
	}
	return 0
}

// SessionKindOf is the API's spelling of k, or "" for an invalid kind.
func SessionKindOf(k sessionkind.Kind) SessionKind {
	switch k {
	case sessionkind.Client:
		return SessionClient
	case sessionkind.Bridge:
		return SessionBridge
	}
	return ""
}

// Condition types and reasons shared by the resources. Each condition is documented
// where it is set; these constants keep controllers and tests in agreement.
const (
	// VPNCluster conditions.
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"

	// VirtualHub conditions.
	ConditionScheduled = "Scheduled"
	ConditionReady     = "Ready"
	ConditionBridged   = "Bridged"
	// ConditionDHCPServer is a Static hub's DHCP server: True names the
	// member told to serve it (status.dhcpServer), as Bridged does for the
	// local bridge.
	ConditionDHCPServer = "DHCPServer"

	// ConnectionLicense conditions.
	ConditionActive    = "Active"
	ConditionExhausted = "Exhausted"
	// ConditionBalanced is True when the allocations written are the split
	// the operator wants for the current usage, False while licenses are
	// moving between members (a decrease waiting for usage to stay lower,
	// or for the member to confirm it, before others get the licenses).
	ConditionBalanced = "Balanced"
)

// Finalizer is put on VPNClusters so the operator can delete what owner references
// cannot reach (cluster-scoped RBAC objects, RoleBindings in hub namespaces, member
// Leases) before the cluster goes away. VirtualHubs and ConnectionLicenses own nothing
// outside themselves, so they carry none (see docs/design-operator.md).
const Finalizer = "vpn.hubfleet.io/finalizer"
