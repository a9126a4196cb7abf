// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Singleton services (local bridges, static hubs' DHCP servers; see
// singleton.go) of a failed peer, moved without the operator. The member
// that claimed the peer's Lease (or holds a death certificate) knows the
// peer's process has certainly stopped them: it is gone, or its Lease
// expired and a member stops its singletons before that
// (singletonFenceMargin). So it gives each to the first live member, in member
// order as the operator prefers them, that may hold it — for a bridge, one
// the operator last found eligible (status.localBridgeEligible: members
// cannot read Nodes). The activation names no container — a member does
// not know its peers' — and is new text, so the chosen member's process
// runs it (it only refuses an activation it found when it started), while
// a process that starts later does not. The operator, once back, activates
// it again naming the container.

// failoverKind is one kind of singleton as failover reads and writes it.
type failoverKind struct {
	name      string // for logs
	condition string
	reason    string // the condition's True reason, as the operator writes it
	has       func(h *vpnv1alpha1.VirtualHub) bool
	holder    func(st *vpnv1alpha1.VirtualHubStatus) *string
	// may reports whether member may hold h's service.
	may func(h *vpnv1alpha1.VirtualHub, member string) bool
	// does is the activation message's "member M <does>" part.
	does func(h *vpnv1alpha1.VirtualHub) string
}

var failoverKinds = []failoverKind{
	{
		name: "local bridge", condition: vpnv1alpha1.ConditionBridged, reason: "Bridged",
		has:    func(h *vpnv1alpha1.VirtualHub) bool { return h.Spec.LocalBridge != nil },
		holder: func(st *vpnv1alpha1.VirtualHubStatus) *string { return &st.LocalBridge },
		may: func(h *vpnv1alpha1.VirtualHub, member string) bool {
			return len(h.Spec.LocalBridge.NodeSelector) == 0 || slices.Contains(h.Status.LocalBridgeEligible, member)
		},
		does: func(h *vpnv1alpha1.VirtualHub) string { return "bridges interface " + h.Spec.LocalBridge.Interface },
	},
	{
		name: "dhcp server", condition: vpnv1alpha1.ConditionDHCPServer, reason: "Serving",
		has:    func(h *vpnv1alpha1.VirtualHub) bool { return h.Spec.DHCP != nil },
		holder: func(st *vpnv1alpha1.VirtualHubStatus) *string { return &st.DHCPServer },
		may:    func(*vpnv1alpha1.VirtualHub, string) bool { return true },
		does: func(h *vpnv1alpha1.VirtualHub) string {
			return "serves DHCP for " + h.Spec.DHCP.Prefix + " from " + h.Spec.DHCP.RangeStart
		},
	},
}

// heldBy are the kinds of singleton member holds (or is releasing) on h.
func heldBy(id *Identity, h *vpnv1alpha1.VirtualHub, member string) []*failoverKind {
	if h.Spec.Type != vpnv1alpha1.HubStatic || !id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil {
		return nil
	}
	var out []*failoverKind
	for i := range failoverKinds {
		k := &failoverKinds[i]
		if k.has(h) && *k.holder(&h.Status) == member {
			out = append(out, k)
		}
	}
	return out
}

// holdsSingleton reports whether member holds (or is releasing) a
// singleton service of a static hub of this cluster.
func holdsSingleton(id *Identity, hubs []*vpnv1alpha1.VirtualHub, member string) bool {
	return slices.ContainsFunc(hubs, func(h *vpnv1alpha1.VirtualHub) bool { return len(heldBy(id, h, member)) > 0 })
}

// singletonTarget is the member that takes h's service of kind k: the first
// live member of peers (in member order) that may hold it; "" if none.
// Live (a fresh Lease of its own) is the readiness that counts, as the
// operator's; the hub's instance list is not consulted: it lags a restart
// (in a rolling update it sent the bridge past the member the operator
// picks), and a member not listed yet runs the service as soon as the
// operator lists it.
func singletonTarget(k *failoverKind, h *vpnv1alpha1.VirtualHub, peers []peerState) string {
	for _, p := range peers {
		if p.live && k.may(h, p.name) {
			return p.name
		}
	}
	return ""
}

// bridgeTarget is singletonTarget for the local bridge.
func bridgeTarget(h *vpnv1alpha1.VirtualHub, peers []peerState) string {
	return singletonTarget(&failoverKinds[0], h, peers)
}

// moveSingletons moves every singleton service the failed peer from holds:
// one status write per hub, for all its services at once.
func (f *failover) moveSingletons(ctx context.Context, peers []peerState, hubs []*vpnv1alpha1.VirtualHub, from *peerState, now time.Time) error {
	m := f.m
	var errs []error
	for _, h := range hubs {
		kinds := heldBy(&m.id, h, from.name)
		to := map[*failoverKind]string{}
		for _, k := range kinds {
			if t := singletonTarget(k, h, peers); t != "" {
				to[k] = t
			} else {
				m.log.Warn("a failed peer's "+k.name+" has no live eligible member to go to", "hub", HubName(h), "peer", from.name)
			}
		}
		if len(to) == 0 {
			continue
		}
		err := f.writeStatus(ctx, h,
			func(h *vpnv1alpha1.VirtualHub) bool {
				for k := range to {
					if *k.holder(&h.Status) == from.name {
						return true
					}
				}
				return false
			},
			func(h *vpnv1alpha1.VirtualHub) vpnv1alpha1.VirtualHubStatus {
				st := *h.Status.DeepCopy()
				for k, t := range to {
					if *k.holder(&h.Status) == from.name {
						singletonMoved(&st, k, h, from.name, t, from.msg, m.id.Name, now)
					}
				}
				return st
			})
		if err != nil {
			errs = append(errs, fmt.Errorf("hub %s: %w", HubName(h), err))
			continue
		}
		var moved []string
		for k, t := range to {
			moved = append(moved, k.name+" to "+t)
		}
		slices.Sort(moved)
		m.log.Warn("moved a failed peer's singleton services", "hub", HubName(h), "from", from.name, "moved", strings.Join(moved, ", "), "reason", from.reason)
	}
	return errors.Join(errs...)
}

// singletonMoved puts h's service of kind k on member to in st, activated
// by member by; the message has the operator's shape, "(container
// unknown)" included, so the operator reads it as an activation for an
// unnamed process.
func singletonMoved(st *vpnv1alpha1.VirtualHubStatus, k *failoverKind, h *vpnv1alpha1.VirtualHub, from, to, evidence, by string, now time.Time) {
	*k.holder(st) = to
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: k.condition, Status: metav1.ConditionTrue, Reason: k.reason, ObservedGeneration: h.Generation,
		LastTransitionTime: metav1.NewTime(now),
		Message: fmt.Sprintf("member %s %s (container unknown); moved from %s by member %s at %s: %s",
			to, k.does(h), from, by, now.UTC().Format(time.RFC3339Nano), evidence),
	})
}
