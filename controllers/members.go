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
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// Reasons a member counts as failed; they become the reason of the hub moves
// it causes.
const (
	ReasonMemberFailed  = "MemberFailed"
	ReasonLeaseExpired  = "LeaseExpired"
	ReasonMemberRemoved = "MemberRemoved"
)

// memberView joins a member's pod and Lease into the one verdict every
// reconciler uses, so the cluster status, the hub placement and the license
// allocations never disagree about who is up.
type memberView struct {
	Name  string
	Pod   *corev1.Pod
	Lease *coordinationv1.Lease
	State vpnv1alpha1.MemberState
	// FailReason is ReasonMemberFailed or ReasonLeaseExpired when State is Failed.
	FailReason string
	// Message explains a member that is not Ready.
	Message string
	Load    memberlease.Load
	Client  int32
	Bridge  int32
}

func (m *memberView) Ready() bool     { return m.State == vpnv1alpha1.MemberReady }
func (m *memberView) Failed() bool    { return m.State == vpnv1alpha1.MemberFailed }
func (m *memberView) Sessions() int32 { return m.Client + m.Bridge }

// memberSet is every member of one cluster at one instant.
type memberSet struct {
	Members []memberView // one per desired replica, by index
	index   map[string]int
	// NextExpiry is the earliest moment a fresh Lease of a member will expire:
	// the reconcilers requeue for it, so an expiry is acted on at once without
	// polling. Zero when no Lease is fresh.
	NextExpiry time.Time
}

func (s *memberSet) byName(name string) *memberView {
	if i, ok := s.index[name]; ok {
		return &s.Members[i]
	}
	return nil
}

// requeueAfter is how long to wait for the next Lease expiry (0: none due).
func (s *memberSet) requeueAfter(now time.Time) time.Duration {
	if s.NextExpiry.IsZero() {
		return 0
	}
	// A few milliseconds late, so the expiry is certainly past when we look.
	return max(s.NextExpiry.Sub(now), 0) + 20*time.Millisecond
}

// soonest is the shortest of the waits that are due at all (0: none).
func soonest(waits ...time.Duration) time.Duration {
	var out time.Duration
	for _, w := range waits {
		if w > 0 && (out == 0 || w < out) {
			out = w
		}
	}
	return out
}

// loadMembers reads the cluster's member pods and Leases from the cache.
func loadMembers(ctx context.Context, c client.Reader, cl *vpnv1alpha1.VPNCluster) (map[string]*corev1.Pod, map[string]*coordinationv1.Lease, error) {
	sel := client.MatchingLabels{memberpod.LabelCluster: cl.Name}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(cl.Namespace), sel); err != nil {
		return nil, nil, err
	}
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(cl.Namespace), sel); err != nil {
		return nil, nil, err
	}
	pm := make(map[string]*corev1.Pod, len(pods.Items))
	for i := range pods.Items {
		pm[pods.Items[i].Name] = &pods.Items[i]
	}
	lm := make(map[string]*coordinationv1.Lease, len(leases.Items))
	for i := range leases.Items {
		lm[leases.Items[i].Name] = &leases.Items[i]
	}
	return pm, lm, nil
}

// computeMembers classifies each member. holding names members that hold a
// dynamic hub: like a previous Ready/Failed state in the cluster status, it
// proves the member was up, so losing it is a failure, not a slow start.
func computeMembers(cl *vpnv1alpha1.VPNCluster, pods map[string]*corev1.Pod, leases map[string]*coordinationv1.Lease, holding map[string]bool, now time.Time) memberSet {
	prev := make(map[string]vpnv1alpha1.MemberState, len(cl.Status.Members))
	for _, m := range cl.Status.Members {
		prev[m.Name] = m.State
	}
	dur := time.Duration(leaseDuration(cl)) * time.Second
	s := memberSet{index: make(map[string]int, cl.Spec.Members)}
	for i := 0; i < int(cl.Spec.Members); i++ {
		name := memberName(cl, i)
		v := memberView{Name: name, Pod: pods[name], Lease: leases[memberlease.LeaseName(name)]}
		wasUp := holding[name] || prev[name] == vpnv1alpha1.MemberReady || prev[name] == vpnv1alpha1.MemberFailed

		expired, expiry := false, time.Time{}
		if v.Lease != nil {
			if v.Lease.Spec.RenewTime != nil {
				expiry = memberlease.Expiry(v.Lease.Spec.RenewTime.Time, dur)
			}
			expired = !now.Before(expiry)
			if !expired && (s.NextExpiry.IsZero() || expiry.Before(s.NextExpiry)) {
				s.NextExpiry = expiry
			}
			if l, err := memberlease.Decode(v.Lease.Annotations[memberpod.AnnotationLoad]); err == nil {
				v.Load = l
				v.Client, v.Bridge = l.Totals()
			}
		}
		problem := podProblem(v.Pod)
		var claim memberlease.Claim
		claimed := false
		if v.Lease != nil {
			// A claimed Lease is a death certificate written by a peer (or by
			// this operator): the member is fenced whatever renewTime says.
			claim, claimed = memberlease.Claimed(name, v.Lease.Spec.HolderIdentity, v.Lease.Annotations)
		}

		switch {
		case claimed && wasUp:
			v.State, v.FailReason = vpnv1alpha1.MemberFailed, claim.Reason
			v.Message = fmt.Sprintf("Lease claimed by %s: %s", claim.By, claim.Message)
		case v.Lease != nil && !expired && !claimed && problem == "":
			v.State = vpnv1alpha1.MemberReady
		case expired && wasUp:
			v.State, v.FailReason = vpnv1alpha1.MemberFailed, ReasonLeaseExpired
			v.Message = fmt.Sprintf("Lease not renewed since %s (leaseDurationSeconds %d)", expiry.Add(-dur).UTC().Format(time.RFC3339), leaseDuration(cl))
		case problem != "" && wasUp:
			v.State, v.FailReason, v.Message = vpnv1alpha1.MemberFailed, ReasonMemberFailed, problem
		default:
			v.State = vpnv1alpha1.MemberStarting
			switch {
			case v.Pod == nil:
				// Never up and no pod: it was not created, not deleted.
				v.Message = "starting: pod not created yet"
			case problem != "":
				v.Message = "starting: " + problem
			case v.Lease == nil:
				v.Message = "starting: waiting for the member's first Lease renewal"
			default:
				v.Message = "starting: Lease expired before the member was ever ready"
			}
		}
		s.index[v.Name] = len(s.Members)
		s.Members = append(s.Members, v)
	}
	return s
}

// podProblem says why a pod cannot serve, or "" when it is Ready.
func podProblem(p *corev1.Pod) string {
	switch {
	case p == nil:
		return "pod does not exist (deleted)"
	case p.DeletionTimestamp != nil:
		return "pod is being deleted"
	case p.Status.Phase == corev1.PodFailed:
		return "pod failed: " + p.Status.Reason
	case p.Status.Phase == corev1.PodSucceeded:
		return "pod exited"
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			// The scheduler's message says what is short (cpu, memory, a
			// node selector, a taint); "not Ready" alone sends the reader to the member.
			return "pod cannot be scheduled" + suffix(c.Reason) + detail(c.Message)
		}
	}
	for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return "container " + cs.Name + " waiting" + suffix(w.Reason) + detail(w.Message)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			if c.Status == corev1.ConditionTrue {
				return ""
			}
			return "pod not Ready" + suffix(c.Reason)
		}
	}
	return "pod not Ready yet"
}

// detail appends a Kubernetes message, if any, to a problem.
func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func suffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// failedNames lists failed members, sorted.
func (s *memberSet) failedNames() []string {
	var out []string
	for _, m := range s.Members {
		if m.Failed() {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

// hubSessions indexes the members' load reports by hub: hub key → member →
// sessions. Built once per reconcile, so placing 10,000 hubs costs one pass
// over the reports rather than one per hub.
func (s *memberSet) hubSessions() map[string]map[string]int32 {
	out := map[string]map[string]int32{}
	for _, m := range s.Members {
		for key, h := range m.Load.Sessions {
			if h.Total() <= 0 {
				continue
			}
			if out[key] == nil {
				out[key] = map[string]int32{}
			}
			out[key][m.Name] = h.Total()
		}
	}
	return out
}
