// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// A client Service without a pinned node port gets one node port number
// for TCP and UDP, so a client dialling the node port finds its UDP data
// channel on the same number (members advertise "the TCP port's"). The
// API server gives a new Service's same-numbered ports one node port
// itself, but not ports that get node ports in an update: here the cluster
// starts as ClusterIP and becomes NodePort, and the allocator gives TCP and
// UDP a number each. The operator then applies TCP's number to UDP too.
func TestClientServiceNodePortSharedByTCPAndUDP(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	newCluster(t, ns, "vpn", 1, nil)
	eventually(t, wait, "the ClusterIP client Service", func() error {
		return k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "vpn"}, &corev1.Service{})
	})
	cl := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
	orig := cl.DeepCopy()
	cl.Spec.Service.Type = corev1.ServiceTypeNodePort
	if err := k8s.Patch(ctx(), cl, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	var ports []corev1.ServicePort
	eventually(t, wait, "one node port for TCP and UDP", func() error {
		var svc corev1.Service
		if err := k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "vpn"}, &svc); err != nil {
			return err
		}
		ports = svc.Spec.Ports
		if len(ports) != 2 {
			return fmt.Errorf("ports %+v", ports)
		}
		if ports[0].NodePort == 0 || ports[0].NodePort != ports[1].NodePort || ports[0].Protocol == ports[1].Protocol {
			return fmt.Errorf("node ports %s %d, %s %d", ports[0].Protocol, ports[0].NodePort, ports[1].Protocol, ports[1].NodePort)
		}
		return nil
	})
	// It stays: a later pass applies the same number (nothing to update).
	tcpPort := ports[0].NodePort
	cl = get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
	orig = cl.DeepCopy()
	cl.Spec.Service.Annotations = map[string]string{"example.com/touched": "yes"}
	if err := k8s.Patch(ctx(), cl, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "the annotation applied, node ports unchanged", func() error {
		svc := get(t, &corev1.Service{}, ns, "vpn")
		if svc.Annotations["example.com/touched"] != "yes" {
			return fmt.Errorf("annotation not applied yet")
		}
		if p := svc.Spec.Ports; p[0].NodePort != tcpPort || p[1].NodePort != tcpPort {
			t.Fatalf("node ports moved to %d/%d from %d", p[0].NodePort, p[1].NodePort, tcpPort)
		}
		return nil
	})
}
