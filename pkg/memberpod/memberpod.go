// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package memberpod is the contract between the operator, which builds the
// member pods (controllers/vpncluster_workload.go), and `hubfleet member
// --cluster`, which runs in them (pkg/member/cluster): environment variable
// names, ports, mount paths and the readiness endpoint. Both sides import
// these names so a change on one side cannot silently break the other: with
// the member Lease's label and annotations, the whole contract is here
// (pkg/memberlease encodes what the annotations carry).
package memberpod

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Environment variables the operator sets on every member container.
const (
	EnvPodName       = "POD_NAME"      // downward API metadata.name: the member's name
	EnvPodNamespace  = "POD_NAMESPACE" // downward API metadata.namespace
	EnvPodIP         = "POD_IP"        // downward API status.podIP
	EnvLeaseDuration = "HUBFLEET_LEASE_DURATION_SECONDS"
	EnvTLSDir        = "HUBFLEET_TLS_DIR"    // tls.crt, tls.key, ca.crt
	EnvTicketKey     = "HUBFLEET_TICKET_KEY" // the resumption-ticket key file
	EnvPeerDir       = "HUBFLEET_PEER_DIR"   // the mesh certificate: tls.crt, tls.key, ca.crt
	EnvPeerName      = "HUBFLEET_PEER_NAME"  // the name in the mesh certificate
	EnvMembers       = "HUBFLEET_MEMBERS_SERVICE"
)

// Container ports, by number and by the name the pod template gives them.
const (
	PortVPN     = 8443 // client sessions (TLS, ALPN hubfleet/1)
	PortMesh    = 8444 // member mesh: static-hub links and relayed sessions
	PortMetrics = 9090 // /metrics, /healthz, /readyz (`--metrics-bind-address`'s default)
	// The same ports as the member listens on them (Go constants cannot
	// format an integer; memberpod_test.go checks they agree).
	ListenVPN      = ":8443"
	MeshPortString = "8444"

	PortNameVPN     = "vpn"
	PortNameMesh    = "mesh"
	PortNameMetrics = "metrics"
	// PortNameVPNUDP is PortVPN for UDP: the sessions' UDP data channel
	// (docs/protocol.md, "UDP data channel"), the same number as TCP, which
	// members advertise as port 0 ("the TCP port's number").
	PortNameVPNUDP = "vpn-udp"
)

// ReadyPath is the readiness endpoint on PortMetrics: 200 while the member
// serves the current placement, 503 with the reason while it does not
// (fenced, resyncing after its Lease expired, not listening yet).
const ReadyPath = "/readyz"

// Mount paths of the member's Secret volumes, and the ticket key's file name.
const (
	MountTLS      = "/etc/hubfleet/tls"
	MountPeer     = "/etc/hubfleet/peer"
	MountTicket   = "/etc/hubfleet/ticket"
	TicketKeyFile = "ticket.key"
)

// DefaultLeaseDurationSeconds is the VPNCluster's default
// spec.failover.leaseDurationSeconds (its +kubebuilder:default marker says
// the same): how long a silent member keeps its dynamic hubs.
const DefaultLeaseDurationSeconds = 3

// MemberName is the name of member i of cluster: the StatefulSet's pod name,
// which is also the member's Lease name.
func MemberName(cluster string, i int) string { return fmt.Sprintf("%s-member-%d", cluster, i) }

// MaxUnavailable resolves a VPNCluster's spec.failover.maxUnavailable (nil:
// 50 %) against its member count: a percentage rounds up, and the result is at
// least 1 so a single failure in a small cluster still moves hubs. The
// operator and the members (which move a dead peer's hubs when the operator
// is absent) hold off by the same figure.
func MaxUnavailable(v *intstr.IntOrString, members int) int {
	if v == nil {
		d := intstr.FromString("50%")
		v = &d
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, members, true)
	if err != nil {
		n = 1
	}
	return max(n, 1)
}

// The member Lease (pkg/memberlease encodes the load and claims in it).
const (
	// LabelCluster is set on every member Lease (and member pod) to the name
	// of the VPNCluster, so the operator can list and watch one cluster's
	// Leases with a label selector.
	LabelCluster = "vpn.hubfleet.io/cluster"
	// AnnotationLoad holds the member's Load as JSON.
	AnnotationLoad = "vpn.hubfleet.io/load"
	// AnnotationPodIP is the pod IP of the process renewing the Lease: peers
	// dial its mesh port there, and a death certificate about another
	// address (the process before a restart) says nothing about this one.
	AnnotationPodIP = "vpn.hubfleet.io/pod-ip"
)

// A claimed Lease (docs/design-operator.md, "Failover without the operator"):
// holderIdentity is ClaimPrefix+claimer and AnnotationClaim says why.
const (
	ClaimPrefix     = "fenced-by:"
	AnnotationClaim = "vpn.hubfleet.io/claim"
)
