// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// The client Service carries the UDP data channel beside TLS on the same
// port number for every Service type, and a fixed node port serves both
// protocols (clients send UDP to the number of the TCP port they dialled).
func TestClientServiceExposesUDPBesideTCP(t *testing.T) {
	np := int32(30443)
	for _, tc := range []struct {
		typ      corev1.ServiceType
		nodePort *int32
		wantNode int32
	}{
		{corev1.ServiceTypeClusterIP, nil, 0},
		{corev1.ServiceTypeClusterIP, &np, 0}, // a ClusterIP Service has no node port
		{corev1.ServiceTypeNodePort, &np, np},
		{corev1.ServiceTypeLoadBalancer, &np, np},
		{corev1.ServiceTypeLoadBalancer, nil, 0},
	} {
		cl := &vpnv1alpha1.VPNCluster{ObjectMeta: metav1.ObjectMeta{Name: "vpn", Namespace: "ns"}}
		cl.Spec.Port = 4443
		cl.Spec.Service.Type = tc.typ
		cl.Spec.Service.NodePort = tc.nodePort
		svc := (&VPNClusterReconciler{}).clientService(cl)
		ps := svc.Spec.Ports
		if len(ps) != 2 {
			t.Fatalf("%s: ports %+v", tc.typ, ps)
		}
		tcp, udp := ps[0], ps[1]
		if tcp.Protocol != corev1.ProtocolTCP || udp.Protocol != corev1.ProtocolUDP || tcp.Port != 4443 || udp.Port != 4443 ||
			udp.Name != "vpn-udp" || udp.TargetPort.StrVal != "vpn-udp" {
			t.Errorf("%s: ports %+v, want 4443/TCP and vpn-udp 4443/UDP", tc.typ, ps)
		}
		if tcp.NodePort != tc.wantNode || udp.NodePort != tc.wantNode {
			t.Errorf("%s nodePort %v: node ports TCP %d UDP %d, want %d for both", tc.typ, tc.nodePort, tcp.NodePort, udp.NodePort, tc.wantNode)
		}
	}
}

// spec.udp: Disabled leaves the client Service with the TLS port only, for
// every Service type.
func TestClientServiceWithoutUDP(t *testing.T) {
	for _, typ := range []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer} {
		cl := &vpnv1alpha1.VPNCluster{ObjectMeta: metav1.ObjectMeta{Name: "vpn", Namespace: "ns"}}
		cl.Spec.Service.Type, cl.Spec.UDP = typ, vpnv1alpha1.UDPDisabled
		ps := (&VPNClusterReconciler{}).clientService(cl).Spec.Ports
		if len(ps) != 1 || ps[0].Protocol != corev1.ProtocolTCP {
			t.Errorf("%s with spec.udp Disabled: ports %+v, want the TCP port only", typ, ps)
		}
	}
}
