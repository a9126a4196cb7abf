// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/placement"
)

// Condition reasons of a VirtualHub.
const (
	ReasonPlaced               = "Placed"
	ReasonReassigned           = "Reassigned"
	ReasonClusterNotFound      = "ClusterNotFound"
	ReasonNamespaceNotAdmitted = "NamespaceNotAdmitted"
	ReasonNoMemberAvailable    = "NoMemberAvailable"
	ReasonMemberReady          = "MemberReady"
	ReasonMemberNotReady       = "MemberNotReady"
	ReasonInstancesReady       = "InstancesReady"
	ReasonBridged              = "Bridged"
)

// place computes every hub's desired status and returns those that differ
// from the current one, and when to look again (the next Lease expiry).
func (r *VirtualHubReconciler) place(ctx context.Context, cl *vpnv1alpha1.VPNCluster, key types.NamespacedName, hubs []liveHub, now time.Time) ([]hubUpdate, time.Duration, error) {
	var ups []hubUpdate
	emit := func(h liveHub, st vpnv1alpha1.VirtualHubStatus, ev *hubEvent) {
		st.ObservedGeneration = h.obj.Generation
		keepServedSessions(&h.status, &st) // virtualhub_sessions.go
		if !hubStatusEqual(&h.status, &st) {
			ups = append(ups, hubUpdate{hub: h, desired: st, event: ev})
		}
	}
	if cl == nil {
		for _, h := range hubs {
			st := unscheduled(h, ReasonClusterNotFound, fmt.Sprintf("VPNCluster %s does not exist (or is being deleted)", key))
			emit(h, st, transitionEvent(h, st, ReasonClusterNotFound))
		}
		forgetPlacementMetrics(key)
		return ups, 0, nil
	}

	// Admission is per namespace; look each one up once.
	verdict := map[string]string{}
	var admitted []liveHub
	for _, h := range hubs {
		msg, seen := verdict[h.obj.Namespace]
		if !seen {
			ok, m, err := admits(ctx, r.Client, cl, h.obj.Namespace)
			if err != nil {
				return nil, 0, err
			}
			if ok {
				m = ""
			}
			verdict[h.obj.Namespace], msg = m, m
		}
		if msg != "" {
			st := unscheduled(h, ReasonNamespaceNotAdmitted, msg)
			emit(h, st, transitionEvent(h, st, ReasonNamespaceNotAdmitted))
			continue
		}
		admitted = append(admitted, h)
	}

	pods, leases, err := loadMembers(ctx, r.Client, cl)
	if err != nil {
		return nil, 0, err
	}
	holding := map[string]bool{}
	for _, h := range admitted {
		if h.status.AssignedMember != "" {
			holding[h.status.AssignedMember] = true
		}
	}
	ms := computeMembers(cl, pods, leases, holding, now)
	sessions := ms.hubSessions()

	snap := placement.Snapshot{MaxUnavailable: maxUnavailable(cl), Failed: ms.failedNames()}
	for _, m := range ms.Members {
		if m.Ready() {
			snap.Members = append(snap.Members, placement.Member{
				Name: m.Name, Ready: true, Weight: int(cl.Spec.Weight),
				Sessions: int(m.Sessions()), MaxSessions: int(cl.Spec.MaxSessionsPerMember),
			})
		}
	}
	hold, holdMsg := startupHold(cl, &ms, now)
	waiting := func(h liveHub) bool {
		return hold > 0 && h.obj.Spec.Type != vpnv1alpha1.HubStatic && h.status.AssignedMember == ""
	}
	keys := make([]string, len(admitted))
	for i, h := range admitted {
		keys[i] = h.obj.Namespace + "/" + h.obj.Name
		if waiting(h) {
			continue // not in the snapshot: Place must not put it anywhere yet
		}
		ph := placement.Hub{Key: keys[i], Type: placement.Dynamic}
		if h.obj.Spec.Type == vpnv1alpha1.HubStatic {
			ph.Type = placement.Static
		} else {
			ph.Assigned = h.status.AssignedMember
		}
		for _, n := range sessions[keys[i]] {
			ph.Sessions += int(n)
		}
		snap.Hubs = append(snap.Hubs, ph)
	}
	d := placement.Place(snap)
	observePlacementPass(key, cl, &ms, holding, keys, d.Held, now)
	// Condition messages per member, built once rather than once per hub:
	// a placement pass builds 10,000 statuses and allocation is its main cost.
	msgs := make(map[string]memberMessages, len(ms.Members))
	for _, m := range ms.Members {
		msgs[m.Name] = memberMessages{scheduled: "assigned to member " + m.Name, ready: "member " + m.Name + " is ready"}
	}
	moves := make(map[string]placement.Move, len(d.Moves))
	for _, m := range d.Moves {
		moves[m.Hub] = m
	}

	nodes := &nodeLabels{c: r.Client}
	var bridgeWait time.Duration
	for i, h := range admitted {
		per := sessions[keys[i]]
		var st vpnv1alpha1.VirtualHubStatus
		var ev *hubEvent
		if waiting(h) {
			st = unscheduled(h, ReasonWaitingForMembers, holdMsg)
			emit(h, st, transitionEvent(h, st, ""))
			continue
		}
		if h.obj.Spec.Type == vpnv1alpha1.HubStatic {
			st = staticStatus(h, d.Static[keys[i]], per, cl)
			ev = transitionEvent(h, st, "")
			// The hub's singleton services (virtualhub_singleton.go).
			for _, svc := range []struct {
				on     bool
				status func(context.Context, liveHub, *vpnv1alpha1.VirtualHubStatus, []string, *memberSet, map[string]*corev1.Pod, map[string]*coordinationv1.Lease, *vpnv1alpha1.VPNCluster, *nodeLabels, time.Time) (*hubEvent, time.Duration, error)
			}{{h.obj.Spec.LocalBridge != nil, bridgeStatus}, {h.obj.Spec.DHCP != nil, dhcpStatus}} {
				if !svc.on {
					continue
				}
				sev, wait, err := svc.status(ctx, h, &st, d.Static[keys[i]], &ms, pods, leases, cl, nodes, now)
				if err != nil {
					return nil, 0, err
				}
				ev = singletonEvent(ev, sev)
				if wait > 0 && (bridgeWait == 0 || wait < bridgeWait) {
					bridgeWait = wait
				}
			}
		} else {
			st, ev = dynamicStatus(h, keys[i], d, moves[keys[i]], &ms, per, msgs, now)
		}
		emit(h, st, ev)
	}
	return ups, soonest(ms.requeueAfter(now), bridgeWait, hold), nil
}

// base starts a desired status from the current one, so conditions keep
// their transition times and lastReassignment its history.
func base(h liveHub) vpnv1alpha1.VirtualHubStatus {
	st := vpnv1alpha1.VirtualHubStatus{
		LastReassignment: h.status.LastReassignment,
		Conditions:       slices.Clone(h.status.Conditions),
	}
	return st
}

func cond(st *vpnv1alpha1.VirtualHubStatus, gen int64, t string, s metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen})
}

func unscheduled(h liveHub, reason, msg string) vpnv1alpha1.VirtualHubStatus {
	st := base(h)
	cond(&st, h.obj.Generation, vpnv1alpha1.ConditionScheduled, metav1.ConditionFalse, reason, msg)
	cond(&st, h.obj.Generation, vpnv1alpha1.ConditionReady, metav1.ConditionFalse, reason, "not scheduled: "+msg)
	removeCondition(&st.Conditions, vpnv1alpha1.ConditionBridged)
	removeCondition(&st.Conditions, vpnv1alpha1.ConditionDHCPServer)
	return st
}

// transitionEvent records an Event when the Scheduled condition changes
// reason (refused, cluster gone, no member, or back to placed).
func transitionEvent(h liveHub, st vpnv1alpha1.VirtualHubStatus, _ string) *hubEvent {
	now := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionScheduled)
	old := meta.FindStatusCondition(h.status.Conditions, vpnv1alpha1.ConditionScheduled)
	if now == nil || (old != nil && old.Reason == now.Reason && old.Status == now.Status) {
		return nil
	}
	typ := corev1.EventTypeNormal
	if now.Status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	return &hubEvent{typ: typ, reason: now.Reason, action: "Schedule", note: now.Message}
}

type memberMessages struct{ scheduled, ready string }

func dynamicStatus(h liveHub, key string, d placement.Decision, mv placement.Move, ms *memberSet, per map[string]int32, msgs map[string]memberMessages, now time.Time) (vpnv1alpha1.VirtualHubStatus, *hubEvent) {
	gen := h.obj.Generation
	member, ok := d.Dynamic[key]
	if !ok {
		ready := 0
		for _, m := range ms.Members {
			if m.Ready() {
				ready++
			}
		}
		st := unscheduled(h, ReasonNoMemberAvailable, fmt.Sprintf("no member can take the hub: %d of %d members ready, none with free capacity", ready, len(ms.Members)))
		return st, transitionEvent(h, st, "")
	}
	st := base(h)
	v := ms.byName(member)
	ready := v != nil && v.Ready()
	st.AssignedMember, st.Placement = member, member
	st.Instances = []vpnv1alpha1.HubInstance{{Member: member, Sessions: per[member], Ready: ready}}
	for _, n := range per {
		st.Sessions += n
	}
	mm, ok := msgs[member]
	if !ok {
		mm = memberMessages{scheduled: "assigned to member " + member, ready: "member " + member + " is ready"}
	}
	cond(&st, gen, vpnv1alpha1.ConditionScheduled, metav1.ConditionTrue, ReasonPlaced, mm.scheduled)
	switch {
	case ready:
		cond(&st, gen, vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonMemberReady, mm.ready)
	case v != nil && v.Failed() && d.Held:
		cond(&st, gen, vpnv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonReassignmentHeld, fmt.Sprintf("member %s failed (%s) and is kept: %s", member, v.Message, d.HeldReason))
	default:
		msg := "member " + member + " is not ready"
		if v != nil && v.Message != "" {
			msg += ": " + v.Message
		}
		cond(&st, gen, vpnv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonMemberNotReady, msg)
	}
	removeCondition(&st.Conditions, vpnv1alpha1.ConditionBridged)
	removeCondition(&st.Conditions, vpnv1alpha1.ConditionDHCPServer)

	if mv.Hub == "" || h.status.AssignedMember == member {
		return st, transitionEvent(h, st, "")
	}
	if mv.From == "" {
		return st, &hubEvent{typ: corev1.EventTypeNormal, reason: ReasonPlaced, action: "Place", note: "placed on member " + member, member: member}
	}
	reason, why := ReasonMemberRemoved, "member "+mv.From+" was removed (scale-down)"
	if mv.Reason == placement.ReasonMemberFailed {
		reason, why = ReasonMemberFailed, "member "+mv.From+" failed"
		if f := ms.byName(mv.From); f != nil && f.FailReason != "" {
			reason, why = f.FailReason, fmt.Sprintf("member %s failed: %s", mv.From, f.Message)
		}
	}
	st.LastReassignment = &vpnv1alpha1.Reassignment{From: mv.From, To: member, Reason: reason, Time: metav1.NewTime(now)}
	return st, &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonReassigned, action: "Reassign", member: member,
		note: fmt.Sprintf("moved from %s to %s (%s): %s", mv.From, member, reason, why)}
}

func staticStatus(h liveHub, members []string, per map[string]int32, cl *vpnv1alpha1.VPNCluster) vpnv1alpha1.VirtualHubStatus {
	gen := h.obj.Generation
	if len(members) == 0 {
		return unscheduled(h, ReasonNoMemberAvailable, fmt.Sprintf("no ready member for an instance (0 of %d members ready)", cl.Spec.Members))
	}
	st := base(h)
	for _, m := range members {
		st.Instances = append(st.Instances, vpnv1alpha1.HubInstance{Member: m, Sessions: per[m], Ready: true})
	}
	for _, n := range per {
		st.Sessions += n
	}
	st.Placement = fmt.Sprintf("%d members", len(members))
	msg := fmt.Sprintf("instances on %d ready members", len(members))
	cond(&st, gen, vpnv1alpha1.ConditionScheduled, metav1.ConditionTrue, ReasonPlaced, msg)
	cond(&st, gen, vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonInstancesReady, msg)

	// The local bridge and the DHCP server, if any, are placed by
	// singletonStatus (virtualhub_singleton.go).
	if h.obj.Spec.LocalBridge == nil {
		removeCondition(&st.Conditions, vpnv1alpha1.ConditionBridged)
	}
	if h.obj.Spec.DHCP == nil {
		removeCondition(&st.Conditions, vpnv1alpha1.ConditionDHCPServer)
	}
	return st
}

// hubStatusEqual compares two hub statuses field by field. It runs for every
// hub of the cluster on every placement (10,000 per failover), where
// reflection-based equality.Semantic.DeepEqual cost more than Place itself.
func hubStatusEqual(a, b *vpnv1alpha1.VirtualHubStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.AssignedMember != b.AssignedMember ||
		a.Placement != b.Placement || a.Sessions != b.Sessions || a.LocalBridge != b.LocalBridge || a.DHCPServer != b.DHCPServer ||
		!slices.Equal(a.Instances, b.Instances) || !slices.Equal(a.LocalBridgeEligible, b.LocalBridgeEligible) ||
		!slices.EqualFunc(a.Conditions, b.Conditions, conditionEqual) || !sessionsEqual(a, b) {
		return false
	}
	ra, rb := a.LastReassignment, b.LastReassignment
	if ra == nil || rb == nil {
		return ra == rb
	}
	return ra.From == rb.From && ra.To == rb.To && ra.Reason == rb.Reason && ra.Time.Equal(&rb.Time)
}

func conditionEqual(a, b metav1.Condition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message &&
		a.ObservedGeneration == b.ObservedGeneration && a.LastTransitionTime.Equal(&b.LastTransitionTime)
}

// removeCondition is meta.RemoveStatusCondition without its allocation when
// the condition is absent (the usual case, on every hub of every pass).
func removeCondition(conds *[]metav1.Condition, t string) {
	if meta.FindStatusCondition(*conds, t) != nil {
		meta.RemoveStatusCondition(conds, t)
	}
}
