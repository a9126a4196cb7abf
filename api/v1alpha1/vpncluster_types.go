// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// VPNClusterSpec describes a fleet of member servers that host Virtual Hubs.
// +kubebuilder:validation:XValidation:rule="!has(self.failover) || !has(self.failover.maxUnavailable) || type(self.failover.maxUnavailable) == string || self.failover.maxUnavailable <= self.members",message="failover.maxUnavailable cannot be larger than members: it is how many members may fail at once before reassignment is held"
type VPNClusterSpec struct {
	// members is the number of member servers (pods). Each runs `hubfleet member`.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="members must be at least 1: a cluster with no member cannot host a hub"
	Members int32 `json:"members"`

	// image of the member pods; defaults to the operator's own image.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// port is the VPN listener port of the client Service (TLS over TCP).
	// +kubebuilder:default=443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// service shapes the Service clients connect to.
	// +kubebuilder:default={type: ClusterIP}
	// +optional
	Service ServiceSpec `json:"service,omitempty"`

	// weight is the default performance ratio of a member (SoftEther's "performance
	// standard ratio"): a member with weight 200 takes twice the sessions of one with 100.
	// +kubebuilder:default=100
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 10000",message="weight must be between 1 and 10000: 100 is the standard, 200 takes twice the sessions of 100"
	// +optional
	Weight int32 `json:"weight,omitempty"`

	// maxSessionsPerMember is M in the placement point: the sessions one member may hold.
	// A full member gets no new session or hub.
	// +kubebuilder:default=4096
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxSessionsPerMember int32 `json:"maxSessionsPerMember,omitempty"`

	// udp is the UDP data channel (docs/user-guide.md, "The UDP data channel"):
	// Enabled lets clients that offer it (hubfleet connect --udp) move frames as
	// datagrams through the client Service's UDP port, with TLS kept for control
	// and fallback. Disabled removes that port from the Service and keeps every
	// session on TLS; sessions using UDP fall back to TLS within seconds, without
	// reconnecting. For networks where UDP is unwanted or filtered.
	// +kubebuilder:default=Enabled
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	UDP UDPMode `json:"udp,omitempty"`

	// failover tunes failure detection and the guard against mass reassignment.
	// +kubebuilder:default={}
	// +optional
	Failover FailoverSpec `json:"failover,omitempty"`

	// hubNamespaces says which namespaces may attach VirtualHubs and ConnectionLicenses
	// to this cluster (as Gateway API's allowedRoutes).
	// +kubebuilder:default={from: Same}
	// +optional
	HubNamespaces HubNamespaces `json:"hubNamespaces,omitempty"`

	// tls names a Secret (type kubernetes.io/tls, with ca.crt) holding the cluster's
	// serving certificate. When unset the operator issues a cluster CA and certificates.
	// +optional
	TLS *TLSSpec `json:"tls,omitempty"`

	// podTemplate holds the parts of the member pods a user may set.
	// +optional
	PodTemplate MemberPodTemplate `json:"podTemplate,omitempty"`
}

// ServiceSpec shapes the client-facing Service.
// +kubebuilder:validation:XValidation:rule="!has(self.nodePort) || self.type != 'ClusterIP'",message="service.nodePort needs service.type NodePort or LoadBalancer"
type ServiceSpec struct {
	// type of the client Service.
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`

	// nodePort pins the node port for NodePort and LoadBalancer Services.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	NodePort *int32 `json:"nodePort,omitempty"`

	// annotations are added to the client Service (e.g. for a cloud load balancer).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// loadBalancerSourceRanges restricts who may reach a LoadBalancer Service.
	// +listType=atomic
	// +optional
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
}

// FailoverSpec tunes failure detection and reassignment.
type FailoverSpec struct {
	// leaseDurationSeconds: a member that has not renewed its Lease for this long is
	// declared failed, and stops serving its dynamic hubs itself (fencing). Members
	// renew every third of it (one API write per member per second at the default
	// 3, i.e. 100 writes/s for 100 members); a frozen or cut-off member's hubs move
	// after at most this long.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=300
	// +optional
	LeaseDurationSeconds int32 `json:"leaseDurationSeconds,omitempty"`

	// maxUnavailable is how many members may fail at once before the operator holds
	// reassignment (sets Degraded and waits), so a network partition never triggers a
	// storm of moves. A number, or a percentage of members rounded up.
	// +kubebuilder:default="50%"
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 : self.matches('^([1-9][0-9]?|100)%$')",message="failover.maxUnavailable must be a number of members of at least 1, or a percentage from 1% to 100%"
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// HubNamespacesFrom says where hubs may come from.
// +kubebuilder:validation:Enum=Same;All;Selector
type HubNamespacesFrom string

const (
	// NamespacesFromSame admits only objects in the cluster's own namespace.
	NamespacesFromSame HubNamespacesFrom = "Same"
	// NamespacesFromAll admits objects from every namespace.
	NamespacesFromAll HubNamespacesFrom = "All"
	// NamespacesFromSelector admits namespaces whose labels match selector.
	NamespacesFromSelector HubNamespacesFrom = "Selector"
)

// HubNamespaces says which namespaces may attach to a cluster.
// +kubebuilder:validation:XValidation:rule="self.from != 'Selector' || has(self.selector)",message="hubNamespaces.selector is required when hubNamespaces.from is Selector"
// +kubebuilder:validation:XValidation:rule="self.from == 'Selector' || !has(self.selector)",message="hubNamespaces.selector is only used when hubNamespaces.from is Selector; set from: Selector or remove selector"
type HubNamespaces struct {
	// from is Same (the cluster's namespace), All, or Selector.
	// +kubebuilder:default=Same
	// +optional
	From HubNamespacesFrom `json:"from,omitempty"`

	// selector picks admitted namespaces by label when from is Selector.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// TLSSpec names a user-provided certificate.
type TLSSpec struct {
	// secretName of a kubernetes.io/tls Secret in the cluster's namespace; it must hold
	// tls.crt, tls.key and ca.crt (clients pin ca.crt).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
}

// MemberPodTemplate holds the parts of member pods a user may set.
type MemberPodTemplate struct {
	// resources of the member container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// nodeSelector for member pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations for member pods.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// affinity for member pods. When unset, members prefer distinct nodes
	// (pod anti-affinity on kubernetes.io/hostname).
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// priorityClassName for member pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// labels added to member pods.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations added to member pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// MemberState is the life stage of a member as the operator sees it.
type MemberState string

const (
	MemberStarting MemberState = "Starting"
	MemberReady    MemberState = "Ready"
	MemberFailed   MemberState = "Failed"
)

// MemberStatus is the operator's view of one member.
type MemberStatus struct {
	// name of the member (its pod name).
	Name string `json:"name"`
	// podIP of the member pod.
	// +optional
	PodIP string `json:"podIP,omitempty"`
	// node the member pod runs on.
	// +optional
	Node string `json:"node,omitempty"`
	// ready is true when the pod is Ready and its Lease is fresh.
	Ready bool `json:"ready"`
	// state is Starting (not yet served: no Lease renewal or pod not Ready
	// since it was created), Ready, or Failed (was Ready, then its pod went
	// away, turned not Ready or Failed, or its Lease expired). The operator
	// keeps it here because "not Ready" means failed only for a member that
	// was up: a member still starting holds nothing to move.
	// +kubebuilder:validation:Enum=Starting;Ready;Failed
	// +optional
	State MemberState `json:"state,omitempty"`
	// weight of the member.
	Weight int32 `json:"weight"`
	// sessions on the member across all hubs.
	// +optional
	Sessions int32 `json:"sessions,omitempty"`
	// point is the member's SoftEther placement point (higher takes the next hub).
	// +optional
	Point int32 `json:"point,omitempty"`
	// hubs is the number of hub instances on the member.
	// +optional
	Hubs int32 `json:"hubs,omitempty"`
	// message explains why a member is not ready.
	// +optional
	Message string `json:"message,omitempty"`
}

// VPNClusterStatus is the observed state of a VPNCluster.
type VPNClusterStatus struct {
	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// ready is "readyMembers/members", for kubectl get.
	// +optional
	Ready string `json:"ready,omitempty"`
	// readyMembers counts members that are ready.
	// +optional
	ReadyMembers int32 `json:"readyMembers,omitempty"`
	// sessions across the cluster. Defaulted so that `kubectl get` shows 0
	// rather than an empty column while no client is connected.
	// +kubebuilder:default=0
	// +optional
	Sessions int32 `json:"sessions,omitempty"`
	// hubs attached to the cluster; defaulted like sessions.
	// +kubebuilder:default=0
	// +optional
	Hubs int32 `json:"hubs,omitempty"`
	// members, one entry per member pod, sorted by name.
	// +listType=map
	// +listMapKey=name
	// +optional
	Members []MemberStatus `json:"members,omitempty"`
	// serviceName of the client Service.
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// caFingerprint is the SHA-256 fingerprint of the cluster CA, for
	// `hubfleet connect --ca-fingerprint`.
	// +optional
	CAFingerprint string `json:"caFingerprint,omitempty"`
	// conditions: Available, Progressing, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// VPNCluster is a fleet of member servers hosting Virtual Hubs.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vpnc;vc,categories=hubfleet
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`,description="ready members / desired members"
// +kubebuilder:printcolumn:name="Sessions",type=integer,JSONPath=`.status.sessions`
// +kubebuilder:printcolumn:name="Hubs",type=integer,JSONPath=`.status.hubs`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`,priority=1
// +kubebuilder:printcolumn:name="Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VPNCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   VPNClusterSpec   `json:"spec"`
	Status VPNClusterStatus `json:"status,omitempty"`
}

// VPNClusterList is a list of VPNClusters.
// +kubebuilder:object:root=true
type VPNClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VPNCluster `json:"items"`
}

func init() {
	register(&VPNCluster{}, &VPNClusterList{})
}

// UDPMode switches the UDP data channel of a cluster.
type UDPMode string

const (
	// UDPEnabled offers the UDP data channel to clients that ask for it.
	UDPEnabled UDPMode = "Enabled"
	// UDPDisabled keeps every session on TLS.
	UDPDisabled UDPMode = "Disabled"
)
