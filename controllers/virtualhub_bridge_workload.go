// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// bridgeCapabilities are what a member needs to bridge a hub to a LAN
// interface through an AF_PACKET socket (pkg/bridge): CAP_NET_RAW to open
// the socket. Promiscuous mode through PACKET_ADD_MEMBERSHIP needs nothing
// more, and the socket's close undoes it; no device or link is created, so
// no CAP_NET_ADMIN.
var bridgeCapabilities = []corev1.Capability{"NET_RAW"}

// bridgePrivileges gives the member pods what a local bridge needs when, and
// only when, an admitted Static hub of the cluster has spec.localBridge;
// other clusters keep members non-root with every capability dropped.
//
// Why root: Kubernetes adds capabilities to the bounding, permitted and
// effective sets of the container's first process, but for a non-root user
// the kernel clears the permitted and effective sets at execve (no ambient
// capabilities are set, and a file capability on the binary would make it
// fail to start in the unprivileged pods). So the bridge's members run as
// uid 0 with every capability dropped except NET_RAW, with no privilege
// escalation and a read-only root filesystem. docs/bridge.md measures and
// explains the trade-off.
func (r *VPNClusterReconciler) bridgePrivileges(ctx context.Context, cl *vpnv1alpha1.VPNCluster, sts *appsv1.StatefulSet) error {
	need, err := r.clusterBridges(ctx, cl)
	if err != nil || !need {
		return err
	}
	spec := &sts.Spec.Template.Spec
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	spec.SecurityContext.RunAsNonRoot = ptr.To(false)
	spec.SecurityContext.RunAsUser = ptr.To[int64](0)
	spec.SecurityContext.RunAsGroup = ptr.To[int64](0)
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.Name != memberContainer {
			continue
		}
		if c.SecurityContext == nil {
			c.SecurityContext = &corev1.SecurityContext{}
		}
		if c.SecurityContext.Capabilities == nil {
			c.SecurityContext.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
		}
		c.SecurityContext.Capabilities.Add = bridgeCapabilities
	}
	return nil
}

// clusterBridges is true when an admitted Static hub of the cluster has a
// local bridge.
func (r *VPNClusterReconciler) clusterBridges(ctx context.Context, cl *vpnv1alpha1.VPNCluster) (bool, error) {
	hubs, err := listClusterHubs(ctx, r.Client, cl)
	if err != nil {
		return false, err
	}
	seen := map[string]bool{}
	for i := range hubs {
		h := &hubs[i]
		if h.Spec.LocalBridge == nil || h.Spec.Type != vpnv1alpha1.HubStatic || !h.DeletionTimestamp.IsZero() {
			continue
		}
		ok, done := seen[h.Namespace]
		if !done {
			if ok, _, err = admits(ctx, r.Client, cl, h.Namespace); err != nil {
				return false, err
			}
			seen[h.Namespace] = ok
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}
