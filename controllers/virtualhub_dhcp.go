// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Reasons of the DHCPServer condition and of its Events (a static hub's
// DHCP server; a dynamic hub's runs with the hub and needs none).
const (
	ReasonDHCPServing         = "Serving"
	ReasonDHCPServerReleasing = "DHCPServerReleasing"
	ReasonDHCPServerPlaced    = "DHCPServerPlaced"
	ReasonDHCPServerMoved     = "DHCPServerMoved"
	ReasonDHCPServerRestarted = "DHCPServerRestarted"
)

// dhcpKind is a static hub's DHCP server as a singleton service
// (virtualhub_singleton.go): any member holding an instance may run it.
func dhcpKind(h *vpnv1alpha1.VirtualHub) *singletonKind {
	d := h.Spec.DHCP
	return &singletonKind{
		condition: vpnv1alpha1.ConditionDHCPServer, activeReason: ReasonDHCPServing,
		releasing: ReasonDHCPServerReleasing, placed: ReasonDHCPServerPlaced, moved: ReasonDHCPServerMoved, restarted: ReasonDHCPServerRestarted,
		placeAction: "PlaceDHCPServer", moveAction: "MoveDHCPServer", releaseAction: "ReleaseDHCPServer",
		noun: "DHCP server", service: "DHCP server " + d.RangeStart,
		does: "serves DHCP for " + d.Prefix + " from " + d.RangeStart, stopping: "serving DHCP", stopped: "serving DHCP",
		holder: func(st *vpnv1alpha1.VirtualHubStatus) *string { return &st.DHCPServer },
	}
}

// dhcpStatus decides a static hub's DHCP server and writes status.dhcpServer
// and the DHCPServer condition into st (singletonStatus).
func dhcpStatus(ctx context.Context, h liveHub, st *vpnv1alpha1.VirtualHubStatus, instances []string, ms *memberSet,
	pods map[string]*corev1.Pod, leases map[string]*coordinationv1.Lease, cl *vpnv1alpha1.VPNCluster, nodes *nodeLabels, now time.Time) (*hubEvent, time.Duration, error) {
	return singletonStatus(ctx, dhcpKind(h.obj), h, st, instances, ms, pods, leases, cl, nodes, now)
}
