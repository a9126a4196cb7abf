// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Local bridges of a failed peer, moved without the operator. The member
// that claimed the peer's Lease (or holds a death certificate) knows its
// bridging process has certainly stopped: it is gone, or its Lease expired
// and a member stops bridging before that (bridgeFenceMargin). So it gives
// the bridge to the first live member, in member order as the operator
// prefers them, that the operator last found eligible
// (status.localBridgeEligible: members cannot read Nodes). The activation names no container — a member does not know its
// peers' — and is new text, so the chosen member's process bridges it (it
// only refuses an activation it found when it started), while a process
// that starts later does not. The operator, once back, activates it again
// naming the container.

// holdsBridge reports whether member holds (or is releasing) the local bridge
// of a static hub of this cluster.
func holdsBridge(id *Identity, hubs []*vpnv1alpha1.VirtualHub, member string) bool {
	return slices.ContainsFunc(hubs, func(h *vpnv1alpha1.VirtualHub) bool { return bridgeOn(id, h, member) })
}

func bridgeOn(id *Identity, h *vpnv1alpha1.VirtualHub, member string) bool {
	return h.Spec.Type == vpnv1alpha1.HubStatic && h.Spec.LocalBridge != nil && h.Status.LocalBridge == member &&
		id.ours(h.Spec.ClusterRef, h.Namespace) && h.DeletionTimestamp == nil
}

// bridgeTarget is the member that takes h's bridge: the first live member of
// peers (in member order) that may bridge it; "" if none. Live (a fresh
// Lease of its own) is the readiness that counts, as the operator's; the
// hub's instance list is not consulted: it lags a restart (in a rolling
// update it sent the bridge past the member the operator picks), and a
// member not listed yet bridges as soon as the operator lists it.
func bridgeTarget(h *vpnv1alpha1.VirtualHub, peers []peerState) string {
	for _, p := range peers {
		if !p.live {
			continue
		}
		if len(h.Spec.LocalBridge.NodeSelector) > 0 && !slices.Contains(h.Status.LocalBridgeEligible, p.name) {
			continue
		}
		return p.name
	}
	return ""
}

// moveBridges moves every local bridge the failed peer from holds.
func (f *failover) moveBridges(ctx context.Context, peers []peerState, hubs []*vpnv1alpha1.VirtualHub, from *peerState, now time.Time) error {
	m := f.m
	var errs []error
	for _, h := range hubs {
		if !bridgeOn(&m.id, h, from.name) {
			continue
		}
		to := bridgeTarget(h, peers)
		if to == "" {
			m.log.Warn("a failed peer's local bridge has no live eligible member to go to", "hub", HubName(h), "peer", from.name)
			continue
		}
		err := f.writeStatus(ctx, h,
			func(h *vpnv1alpha1.VirtualHub) bool { return h.Status.LocalBridge == from.name },
			func(h *vpnv1alpha1.VirtualHub) vpnv1alpha1.VirtualHubStatus {
				return bridgeMovedStatus(h, from.name, to, from.msg, m.id.Name, now)
			})
		if err != nil {
			errs = append(errs, fmt.Errorf("hub %s: %w", HubName(h), err))
			continue
		}
		m.log.Warn("moved a failed peer's local bridge", "hub", HubName(h), "from", from.name, "to", to, "reason", from.reason)
	}
	return errors.Join(errs...)
}

// bridgeMovedStatus is h's status with its bridge on member to, activated by
// member by; the message has the operator's shape, "(container unknown)"
// included, so the operator reads it as an activation for an unnamed process.
func bridgeMovedStatus(h *vpnv1alpha1.VirtualHub, from, to, evidence, by string, now time.Time) vpnv1alpha1.VirtualHubStatus {
	st := *h.Status.DeepCopy()
	st.LocalBridge = to
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: vpnv1alpha1.ConditionBridged, Status: metav1.ConditionTrue, Reason: "Bridged", ObservedGeneration: h.Generation,
		LastTransitionTime: metav1.NewTime(now),
		Message: fmt.Sprintf("member %s bridges interface %s (container unknown); moved from %s by member %s at %s: %s",
			to, h.Spec.LocalBridge.Interface, from, by, now.UTC().Format(time.RFC3339Nano), evidence),
	})
	return st
}
