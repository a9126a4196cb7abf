// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/placement"
)

// The operator reads the node labels of member pods to apply
// spec.localBridge.nodeSelector.
// +kubebuilder:rbac:groups=core,resources=nodes,verbs=get;list;watch

// Reasons of the Bridged condition and of bridge Events.
const (
	ReasonBridgeReleasing  = "BridgeReleasing"
	ReasonNoEligibleMember = "NoEligibleMember"
	ReasonBridgePlaced     = "BridgePlaced"
	ReasonBridgeMoved      = "BridgeMoved"
	ReasonBridgeRestarted  = "BridgeRestarted"
)

// memberContainer is the member container's name in the StatefulSet.
const memberContainer = "member"

// bridgeProcessMark precedes the activated process in the Bridged message.
// The message is the activation token members compare (pkg/member/cluster):
// a restarted member process never bridges the activation it found at
// start, and the operator activates a bridge for a process by naming it.
const bridgeProcessMark = "(container "

// nodeLabels looks up node labels once per placement pass.
type nodeLabels struct {
	c    client.Reader
	seen map[string]labels.Set
}

func (n *nodeLabels) get(ctx context.Context, name string) (labels.Set, error) {
	if l, ok := n.seen[name]; ok {
		return l, nil
	}
	var node corev1.Node
	if err := n.c.Get(ctx, client.ObjectKey{Name: name}, &node); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("reading node %s for localBridge.nodeSelector: %w", name, err)
		}
		node.Labels = nil
	}
	if n.seen == nil {
		n.seen = map[string]labels.Set{}
	}
	n.seen[name] = node.Labels
	return node.Labels, nil
}

// bridgeStatus decides a static hub's local bridge (pkg/placement.PlaceBridge)
// and writes status.localBridge and the Bridged condition into st. instances
// are the members holding an instance of the hub. It returns the Event of a
// change and when to look again (a bridge waiting for its holder to stop).
func bridgeStatus(ctx context.Context, h liveHub, st *vpnv1alpha1.VirtualHubStatus, instances []string, ms *memberSet,
	pods map[string]*corev1.Pod, leases map[string]*coordinationv1.Lease, cl *vpnv1alpha1.VPNCluster, nodes *nodeLabels, now time.Time) (*hubEvent, time.Duration, error) {
	lb := h.obj.Spec.LocalBridge
	gen := h.obj.Generation
	dur := time.Duration(leaseDuration(cl)) * time.Second
	old := meta.FindStatusCondition(h.status.Conditions, vpnv1alpha1.ConditionBridged)

	bs := placement.BridgeState{Holder: h.status.LocalBridge, Grace: dur}
	if old != nil && bs.Holder != "" {
		bs.Active = old.Status == metav1.ConditionTrue
		bs.HolderProcess, bs.Known = processIn(old.Message)
		if !bs.Active {
			bs.Inactive = now.Sub(old.LastTransitionTime.Time)
		}
	}
	sel := labels.SelectorFromSet(lb.NodeSelector)
	members := make([]placement.BridgeMember, 0, len(ms.Members)+1)
	why := map[string]string{} // why a member is not a candidate, for messages
	for _, m := range ms.Members {
		bm := placement.BridgeMember{Name: m.Name, Ready: m.Ready() && slices.Contains(instances, m.Name)}
		bm.Process, bm.Stopped = bridgeProcess(m.Pod, m.Lease, dur, now)
		if len(lb.NodeSelector) == 0 {
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
			why[m.Name] = "not on a node matching nodeSelector " + selectorString(lb.NodeSelector)
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
	st.LocalBridge = d.Holder
	// Members move the bridge of a failed holder while the operator is away
	// (pkg/member/cluster/failover.go); they cannot read Nodes, so the
	// operator tells them who is eligible.
	st.LocalBridgeEligible = nil
	for _, m := range members {
		if m.Eligible && ms.byName(m.Name) != nil {
			st.LocalBridgeEligible = append(st.LocalBridgeEligible, m.Name)
		}
	}
	var ev *hubEvent
	switch d.Why {
	case placement.BridgeKept, placement.BridgePlaced, placement.BridgeMoved, placement.BridgeRestarted:
		msg := fmt.Sprintf("member %s bridges interface %s %s%s)", d.Holder, lb.Interface, bridgeProcessMark, d.Process)
		setBridged(st, gen, metav1.ConditionTrue, ReasonBridged, msg, now)
		switch {
		case d.Why == placement.BridgeMoved:
			ev = &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonBridgeMoved, action: "MoveBridge", member: d.Holder,
				note: fmt.Sprintf("bridge to interface %s moved from %s to %s: %s certainly stopped bridging (%s)", lb.Interface, d.From, d.Holder, d.From, stopReason(d.From, members, bs, pods, leases, dur, now))}
		case d.Why == placement.BridgeRestarted:
			ev = &hubEvent{typ: corev1.EventTypeNormal, reason: ReasonBridgeRestarted, action: "PlaceBridge", member: d.Holder,
				note: fmt.Sprintf("member %s runs a new process (container %s): bridge to interface %s activated for it", d.Holder, d.Process, lb.Interface)}
		case old == nil || old.Status != metav1.ConditionTrue || h.status.LocalBridge != d.Holder:
			ev = &hubEvent{typ: corev1.EventTypeNormal, reason: ReasonBridgePlaced, action: "PlaceBridge", member: d.Holder,
				note: fmt.Sprintf("bridge to interface %s placed on member %s", lb.Interface, d.Holder)}
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
		msg := fmt.Sprintf("member %s is %s and must stop bridging interface %s %s%s); the bridge moves once it has certainly stopped: its container ends, its Lease expires, or %s after this condition turned False",
			d.Holder, reason, lb.Interface, bridgeProcessMark, proc, dur)
		setBridged(st, gen, metav1.ConditionFalse, ReasonBridgeReleasing, msg, now)
		if old == nil || old.Reason != ReasonBridgeReleasing {
			ev = &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonBridgeReleasing, action: "ReleaseBridge", member: d.Holder, note: msg}
		}
	case placement.BridgeNoEligible:
		msg := "no ready member holds an instance of the hub"
		if len(lb.NodeSelector) > 0 {
			msg = "no ready member on a node matching nodeSelector " + selectorString(lb.NodeSelector)
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
		setBridged(st, gen, metav1.ConditionFalse, ReasonNoEligibleMember, msg, now)
		if old == nil || old.Reason != ReasonNoEligibleMember {
			ev = &hubEvent{typ: corev1.EventTypeWarning, reason: ReasonNoEligibleMember, action: "PlaceBridge", note: msg}
		}
	}
	return ev, d.Wait, nil
}

// bridgeEvent merges a bridge Event into the hub's scheduling Event of the
// same pass (a hub update carries one Event): a bridge placed with the hub
// is told in the Placed Event; any other bridge Event wins.
func bridgeEvent(ev, bev *hubEvent) *hubEvent {
	switch {
	case bev == nil:
		return ev
	case ev == nil:
		return bev
	case bev.reason == ReasonBridgePlaced:
		e := *ev
		e.note += "; " + bev.note
		return &e
	}
	return bev
}

// setBridged sets the Bridged condition. A new activation (a True message
// naming another member or process) is a transition of its own: its time is
// when that member was told to bridge.
func setBridged(st *vpnv1alpha1.VirtualHubStatus, gen int64, s metav1.ConditionStatus, reason, msg string, now time.Time) {
	c := metav1.Condition{Type: vpnv1alpha1.ConditionBridged, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
	if old := meta.FindStatusCondition(st.Conditions, c.Type); old != nil && old.Status == s && old.Reason == reason {
		c.LastTransitionTime = old.LastTransitionTime
	} else {
		c.LastTransitionTime = metav1.NewTime(now)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// bridgeProcess returns the member container's ID and whether the member
// certainly does not bridge: no pod, a finished pod, a container that is not
// running (the process ended; the kubelet reports it within a second), or an
// expired Lease (the member fences itself before that).
func bridgeProcess(pod *corev1.Pod, lease *coordinationv1.Lease, dur time.Duration, now time.Time) (string, bool) {
	if lease != nil && lease.Spec.RenewTime != nil && !now.Before(memberlease.Expiry(lease.Spec.RenewTime.Time, dur)) {
		return runningContainer(pod), true
	}
	if pod == nil || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return "", true
	}
	id := runningContainer(pod)
	return id, id == "" && !hasRunningUnknown(pod)
}

// runningContainer is the short ID of the running member container, or "".
func runningContainer(pod *corev1.Pod) string {
	if pod == nil {
		return ""
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == memberContainer && c.State.Running != nil {
			if c.ContainerID == "" {
				return "running"
			}
			return shortID(c.ContainerID)
		}
	}
	return ""
}

// hasRunningUnknown is true for a pod whose container statuses are missing
// although it runs: then nothing proves the process ended.
func hasRunningUnknown(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == memberContainer {
			return false
		}
	}
	return true
}

// stopReason says why the previous holder counts as stopped.
func stopReason(name string, members []placement.BridgeMember, bs placement.BridgeState, pods map[string]*corev1.Pod, leases map[string]*coordinationv1.Lease, dur time.Duration, now time.Time) string {
	pod, lease := pods[name], leases[memberlease.LeaseName(name)]
	switch {
	case lease != nil && lease.Spec.RenewTime != nil && !now.Before(memberlease.Expiry(lease.Spec.RenewTime.Time, dur)):
		return "its Lease expired at " + memberlease.Expiry(lease.Spec.RenewTime.Time, dur).UTC().Format(time.RFC3339)
	case pod == nil:
		return "its pod was deleted"
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		return "its pod ended (" + string(pod.Status.Phase) + ")"
	}
	for _, m := range members {
		if m.Name == name && bs.Known && m.Process != bs.HolderProcess && m.Process != "" {
			return "its container " + bs.HolderProcess + " was replaced by " + m.Process
		}
	}
	if !bs.Active && bs.Inactive >= bs.Grace {
		return fmt.Sprintf("it was told to stop %s ago", bs.Inactive.Round(time.Second))
	}
	return "its container is not running"
}

// processIn extracts the process an activation named from a Bridged message.
func processIn(msg string) (string, bool) {
	i := strings.LastIndex(msg, bridgeProcessMark)
	if i < 0 {
		return "", false
	}
	rest := msg[i+len(bridgeProcessMark):]
	j := strings.IndexByte(rest, ')')
	if j <= 0 || rest[:j] == "unknown" {
		return "", false
	}
	return rest[:j], true
}

// shortID shortens "containerd://0123456789abcdef…" to 12 hex digits, as
// crictl and docker print it; the Bridged message compares these.
func shortID(id string) string {
	if i := strings.Index(id, "://"); i >= 0 {
		id = id[i+3:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

func selectorString(sel map[string]string) string {
	keys := slices.Sorted(maps.Keys(sel))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + sel[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
