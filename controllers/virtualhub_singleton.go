// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/placement"
)

// A static hub is on every ready member, but some of its services must run
// on exactly one: the local bridge (two would loop the LAN through the
// mesh) and the DHCP server (two would lease from two tables and give one
// address to two clients). Both are placed, activated for one process,
// released and moved by the one rule of docs/bridge.md ("Placement and
// fencing"): never to a new member while the previous holder may still run
// it. singletonStatus applies that rule (pkg/placement.PlaceBridge) to one
// such service; singletonKind says which status field and condition record
// it and how messages name it. The members' side is pkg/member/cluster
// (singleton.go).
//
// Each service has a holder of its own (status.localBridge,
// status.dhcpServer) rather than one holder for both: a DHCP server needs no
// LAN, so the bridge's nodeSelector must not restrict it, and a bridge
// released because its node lost a label must not stop address leasing.
// Without a nodeSelector both go to the same member, the first ready one.

// singletonKind is one singleton service of a hub as the operator records it.
type singletonKind struct {
	condition    string // condition type: Bridged, DHCPServer
	activeReason string // its reason while True
	// Condition and Event reasons.
	releasing, placed, moved, restarted string
	// Event actions.
	placeAction, moveAction, releaseAction string
	// How messages name the service: noun "bridge"; service "bridge to
	// interface eth1"; "member M <does> (container C)"; "must stop
	// <stopping>"; "certainly stopped <stopped>".
	noun, service, does, stopping, stopped string
	// nodeSelector limits the holder to members on matching nodes.
	nodeSelector map[string]string
	// holder is the status field naming the holder; eligible the field
	// listing the members that may hold it (nil: any member may).
	holder   func(*vpnv1alpha1.VirtualHubStatus) *string
	eligible func(*vpnv1alpha1.VirtualHubStatus) *[]string
}

// singletonStatus decides a static hub's singleton service of kind k
// (pkg/placement.PlaceBridge) and writes its holder and condition into st.
// instances are the members holding an instance of the hub. It returns the
// Event of a change and when to look again (a service waiting for its
// holder to stop).
func singletonStatus(ctx context.Context, k *singletonKind, h liveHub, st *vpnv1alpha1.VirtualHubStatus, instances []string, ms *memberSet,
	pods map[string]*corev1.Pod, leases map[string]*coordinationv1.Lease, cl *vpnv1alpha1.VPNCluster, nodes *nodeLabels, now time.Time) (*hubEvent, time.Duration, error) {
	gen := h.obj.Generation
	dur := time.Duration(leaseDuration(cl)) * time.Second
	old := meta.FindStatusCondition(h.status.Conditions, k.condition)
	cur := *k.holder(&h.status)

	bs := placement.BridgeState{Holder: cur, Grace: dur}
	if old != nil && bs.Holder != "" {
		bs.Active = old.Status == metav1.ConditionTrue
		bs.HolderProcess, bs.Known = processIn(old.Message)
		if !bs.Active {
			bs.Inactive = now.Sub(old.LastTransitionTime.Time)
		}
	}
	sel := labels.SelectorFromSet(k.nodeSelector)
	members := make([]placement.BridgeMember, 0, len(ms.Members)+1)
	why := map[string]string{} // why a member is not a candidate, for messages
	for _, m := range ms.Members {
		bm := placement.BridgeMember{Name: m.Name, Ready: m.Ready() && containsString(instances, m.Name)}
		bm.Process, bm.Stopped = bridgeProcess(m.Pod, m.Lease, dur, now)
		if len(k.nodeSelector) == 0 {
			bm.Eligible = true
		} else if m.Pod != nil && m.Pod.Spec.NodeName != "" {
			l, err := nodes.get(ctx, m.Pod.Spec.NodeName)
			if err != nil {
				return nil, 0, err
			}
			bm.Eligible = sel.Matches(l)
		}
		switch {
		case !bm.Eligible:
			why[m.Name] = "not on a node matching nodeSelector " + selectorString(k.nodeSelector)
		case !bm.Ready:
			why[m.Name] = "not ready: " + m.Message
		}
		members = append(members, bm)
	}
	if bs.Holder != "" && ms.byName(bs.Holder) == nil {
		// A member removed by a scale-down may still be terminating.
		bm := placement.BridgeMember{Name: bs.Holder}
		bm.Process, bm.Stopped = bridgeProcess(pods[bs.Holder], leases[memberlease.LeaseName(bs.Holder)], dur, now)
		why[bs.Holder] = "removed from the cluster"
		members = append(members, bm)
	}

	d := placement.PlaceBridge(bs, members)
	*k.holder(st) = d.Holder
	if k.eligible != nil {
		// Members move the service of a failed holder while the operator is
		// away (pkg/member/cluster/failover_singleton.go); they cannot read
		// Nodes, so the operator tells them who is eligible.
		el := k.eligible(st)
		*el = nil
		for _, m := range members {
			if m.Eligible && ms.byName(m.Name) != nil {
				*el = append(*el, m.Name)
			}
		}
	}
	var ev *hubEvent
	switch d.Why {
	case placement.BridgeKept, placement.BridgePlaced, placement.BridgeMoved, placement.BridgeRestarted:
		msg := fmt.Sprintf("member %s %s %s%s)", d.Holder, k.does, bridgeProcessMark, d.Process)
		setSingleton(st, k.condition, gen, metav1.ConditionTrue, k.activeReason, msg, now)
		switch {
		case d.Why == placement.BridgeMoved:
			ev = &hubEvent{typ: corev1.EventTypeWarning, reason: k.moved, action: k.moveAction, member: d.Holder,
				note: fmt.Sprintf("%s moved from %s to %s: %s certainly stopped %s (%s)", k.service, d.From, d.Holder, d.From, k.stopped, stopReason(d.From, members, bs, pods, leases, dur, now))}
		case d.Why == placement.BridgeRestarted:
			ev = &hubEvent{typ: corev1.EventTypeNormal, reason: k.restarted, action: k.placeAction, member: d.Holder,
				note: fmt.Sprintf("member %s runs a new process (container %s): %s activated for it", d.Holder, d.Process, k.service)}
		case old == nil || old.Status != metav1.ConditionTrue || cur != d.Holder:
			ev = &hubEvent{typ: corev1.EventTypeNormal, reason: k.placed, action: k.placeAction, member: d.Holder,
				note: fmt.Sprintf("%s placed on member %s", k.service, d.Holder)}
		}
	case placement.BridgeReleasing:
		reason := why[d.Holder]
		if reason == "" {
			reason = "not ready"
		}
		proc := "unknown"
		if bs.Known {
			proc = bs.HolderProcess
		}
		msg := fmt.Sprintf("member %s is %s and must stop %s %s%s); the %s moves once it has certainly stopped: its container ends, its Lease expires, or %s after this condition turned False",
			d.Holder, reason, k.stopping, bridgeProcessMark, proc, k.noun, dur)
		setSingleton(st, k.condition, gen, metav1.ConditionFalse, k.releasing, msg, now)
		if old == nil || old.Reason != k.releasing {
			ev = &hubEvent{typ: corev1.EventTypeWarning, reason: k.releasing, action: k.releaseAction, member: d.Holder, note: msg}
		}
	case placement.BridgeNoEligible:
		msg := "no ready member holds an instance of the hub"
		if len(k.nodeSelector) > 0 {
			msg = "no ready member on a node matching nodeSelector " + selectorString(k.nodeSelector)
		}
		var notes []string
		for _, m := range members {
			if why[m.Name] != "" {
				notes = append(notes, m.Name+" "+why[m.Name])
			}
		}
		if len(notes) > 0 {
			msg += " (" + strings.Join(notes, "; ") + ")"
		}
		setSingleton(st, k.condition, gen, metav1.ConditionFalse, ReasonNoEligibleMember, msg, now)
		if old == nil || old.Reason != ReasonNoEligibleMember {
			ev = &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonNoEligibleMember, action: k.placeAction, note: msg}
		}
	}
	return ev, d.Wait, nil
}

// singletonEvent merges a singleton's Event into the hub's Event of the
// same pass (a hub update carries one Event): a service placed with the hub
// is told in that Event; any other service Event wins.
func singletonEvent(ev, sev *hubEvent) *hubEvent {
	switch {
	case sev == nil:
		return ev
	case ev == nil:
		return sev
	case sev.reason == ReasonBridgePlaced || sev.reason == ReasonDHCPServerPlaced:
		e := *ev
		e.note += "; " + sev.note
		return &e
	}
	return sev
}

// setSingleton sets a singleton's condition. A new activation (a True
// message naming another member or process) is a transition of its own: its
// time is when that member was told to run the service.
func setSingleton(st *vpnv1alpha1.VirtualHubStatus, typ string, gen int64, s metav1.ConditionStatus, reason, msg string, now time.Time) {
	c := metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
	if old := meta.FindStatusCondition(st.Conditions, c.Type); old != nil && old.Status == s && old.Reason == reason {
		c.LastTransitionTime = old.LastTransitionTime
	} else {
		c.LastTransitionTime = metav1.NewTime(now)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
