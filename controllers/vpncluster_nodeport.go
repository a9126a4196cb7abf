// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// One node port for TCP and UDP. Members advertise UDP port 0, "the number
// of the TCP port you dialled", so a client that dials a node port directly
// must find the UDP data channel on the same node port number. When the
// spec pins spec.service.nodePort, clientService applies it to both ports.
// Otherwise the API server allocates node ports itself, and it allocates
// one per port: TCP and UDP would differ. So, once the Service exists, the
// node port allocated to the TCP port is applied to both: Kubernetes lets
// one Service use one node port number for two protocols (node ports are
// allocated per number, and a Service's own TCP port already holds it).
// The first apply of a new Service leaves both to the allocator; the
// Service's creation wakes this reconciler (it owns Services), and the
// next apply moves UDP to TCP's number, releasing the one UDP had.
// Applying the allocated TCP number also makes this manager an owner of
// that field, with the value it already has: nothing moves for TCP.

// clientServiceNodePorts is clientService with, when the spec pins no node
// port and the Service has node ports, the TCP port's allocated node port
// on both ports.
func (r *VPNClusterReconciler) clientServiceNodePorts(ctx context.Context, cl *vpnv1alpha1.VPNCluster) *corev1.Service {
	svc := r.clientService(cl)
	ps := svc.Spec.Ports
	if svc.Spec.Type == corev1.ServiceTypeClusterIP || ps[0].NodePort != 0 {
		return svc
	}
	var live corev1.Service
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(svc), &live); err != nil || live.Spec.Type == corev1.ServiceTypeClusterIP {
		return svc // not created yet (or not in the cache yet): the allocator chooses, the next pass aligns
	}
	for _, p := range live.Spec.Ports {
		if p.Name == ps[0].Name && p.Protocol == corev1.ProtocolTCP && p.NodePort != 0 {
			for i := range ps {
				ps[i].NodePort = p.NodePort
			}
		}
	}
	return svc
}
