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

// bridgeKind is the local bridge as a singleton service of the hub
// (virtualhub_singleton.go).
func bridgeKind(h *vpnv1alpha1.VirtualHub) *singletonKind {
	lb := h.Spec.LocalBridge
	return &singletonKind{
		condition: vpnv1alpha1.ConditionBridged, activeReason: ReasonBridged,
		releasing: ReasonBridgeReleasing, placed: ReasonBridgePlaced, moved: ReasonBridgeMoved, restarted: ReasonBridgeRestarted,
		placeAction: "PlaceBridge", moveAction: "MoveBridge", releaseAction: "ReleaseBridge",
		noun: "bridge", service: "bridge to interface " + lb.Interface,
		does: "bridges interface " + lb.Interface, stopping: "bridging interface " + lb.Interface, stopped: "bridging",
		nodeSelector: lb.NodeSelector,
		holder:       func(st *vpnv1alpha1.VirtualHubStatus) *string { return &st.LocalBridge },
		eligible:     func(st *vpnv1alpha1.VirtualHubStatus) *[]string { return &st.LocalBridgeEligible },
	}
}

// bridgeStatus decides a static hub's local bridge and writes
// status.localBridge and the Bridged condition into st (singletonStatus).
func bridgeStatus(ctx context.Context, h liveHub, st *vpnv1alpha1.VirtualHubStatus, instances []string, ms *memberSet,
	pods map[string]*corev1.Pod, leases map[string]*coordinationv1.Lease, cl *vpnv1alpha1.VPNCluster, nodes *nodeLabels, now time.Time) (*hubEvent, time.Duration, error) {
	return singletonStatus(ctx, bridgeKind(h.obj), h, st, instances, ms, pods, leases, cl, nodes, now)
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
