// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/license"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
)

// Condition reasons of a ConnectionLicense.
const (
	ReasonCounted     = "Counted"
	ReasonExhausted   = "Exhausted"
	ReasonWithinLimit = "WithinLimit"
	ReasonBalanced    = "Balanced"
	ReasonMoving      = "Moving"
)

// ConnectionLicenseReconciler totals a cluster's licenses, reads the members'
// use from their Lease load reports, splits the totals into per-member
// allocations with pkg/license.Allocate, and writes the same cluster-wide
// status to every license of the cluster.
//
// How a member learns its allocation: it watches the ConnectionLicenses of
// its cluster (its Role allows that). No license object for the cluster means
// unlimited. Any license means limited: the member's allocation is its entry
// in status.allocations (all licenses show the same list); a member without
// an entry yet (just added) admits nothing until the operator publishes one,
// because admitting unlimited would oversubscribe.
//
// Licenses carry no finalizer: removing one only lowers the totals, which
// the delete event already triggers.
type ConnectionLicenseReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder

	// damping is license.Damp's memory between passes: per cluster and
	// kind, since when each member's ideal allocation has been below the
	// one written.
	dampMu  sync.Mutex
	damping map[dampKey]map[string]time.Time
}

type dampKey struct {
	cluster types.NamespacedName
	bridge  bool
}

// rebalanceDelay is how long a member's usage must stay lower before the
// operator moves its free licenses to others (license.Damp): loans serve a
// burst at once, and a move during one leaves a license unusable until the
// lowered member confirms.
const rebalanceDelay = 5 * time.Second

// damp runs license.Damp with the reconciler's memory for one cluster and kind.
func (r *ConnectionLicenseReconciler) damp(key dampKey, total int, ideal map[string]int, held []license.Held, now time.Time) (map[string]int, time.Duration) {
	r.dampMu.Lock()
	defer r.dampMu.Unlock()
	if r.damping == nil {
		r.damping = map[dampKey]map[string]time.Time{}
	}
	since := r.damping[key]
	if since == nil {
		since = map[string]time.Time{}
		r.damping[key] = since
	}
	out, next := license.Damp(total, ideal, held, since, now, rebalanceDelay)
	if len(since) == 0 {
		delete(r.damping, key)
	}
	return out, next
}

// Reconcile recomputes the licenses of the cluster named by req.
func (r *ConnectionLicenseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var list vpnv1alpha1.ConnectionLicenseList
	if err := r.Client.List(ctx, &list, client.MatchingFields{indexClusterKey: req.String()}); err != nil {
		return ctrl.Result{}, err
	}
	if len(list.Items) == 0 {
		forgetLicenseMetrics(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	cl := &vpnv1alpha1.VPNCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, cl); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
		cl = nil
	}
	now := time.Now()
	var requeue time.Duration
	desired := make([]vpnv1alpha1.ConnectionLicenseStatus, len(list.Items))
	if cl == nil || !cl.DeletionTimestamp.IsZero() {
		forgetLicenseMetrics(req.NamespacedName)
		for i := range list.Items {
			desired[i] = inactive(&list.Items[i], ReasonClusterNotFound, fmt.Sprintf("VPNCluster %s does not exist (or is being deleted)", req.NamespacedName))
		}
	} else {
		var err error
		requeue, err = r.compute(ctx, cl, list.Items, desired, now)
		if err != nil {
			return ctrl.Result{}, err
		}
	}
	for i := range list.Items {
		l := &list.Items[i]
		desired[i].ObservedGeneration = l.Generation
		if equality.Semantic.DeepEqual(l.Status, desired[i]) {
			continue
		}
		old := l.DeepCopy()
		wasExhausted := meta.IsStatusConditionTrue(l.Status.Conditions, vpnv1alpha1.ConditionExhausted)
		l.Status = desired[i]
		// The allocations written last are an input of the next split
		// (status.go). Every license of the cluster carries the same figures
		// from one computation, so a conflict on one recomputes them all.
		conflict, err := patchStatus(ctx, r.Client, l, old)
		if conflict {
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		if c := meta.FindStatusCondition(l.Status.Conditions, vpnv1alpha1.ConditionExhausted); c != nil && c.Status == metav1.ConditionTrue && !wasExhausted {
			r.Recorder.Eventf(l, nil, corev1.EventTypeWarning, ReasonExhausted, "CountLicenses", "%s", c.Message)
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

func inactive(l *vpnv1alpha1.ConnectionLicense, reason, msg string) vpnv1alpha1.ConnectionLicenseStatus {
	st := vpnv1alpha1.ConnectionLicenseStatus{Conditions: slices.Clone(l.Status.Conditions)}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: vpnv1alpha1.ConditionActive, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: l.Generation})
	meta.RemoveStatusCondition(&st.Conditions, vpnv1alpha1.ConditionExhausted)
	meta.RemoveStatusCondition(&st.Conditions, vpnv1alpha1.ConditionBalanced)
	return st
}

// licenseHeadroom is the minimum spare allocation each ready member gets
// (see license.Allocate): a tenth of the total spread over the members, at
// least one, so a member can admit a burst of new sessions between two
// rebalances without waiting for the operator.
func licenseHeadroom(total, members int) int {
	return max(1, total/10/max(members, 1))
}

func (r *ConnectionLicenseReconciler) compute(ctx context.Context, cl *vpnv1alpha1.VPNCluster, items []vpnv1alpha1.ConnectionLicense, desired []vpnv1alpha1.ConnectionLicenseStatus, now time.Time) (time.Duration, error) {
	var clientTotal, bridgeTotal int64
	var counted []string
	active := make([]bool, len(items))
	for i := range items {
		l := &items[i]
		ok, msg, err := admits(ctx, r.Client, cl, l.Namespace)
		if err != nil {
			return 0, err
		}
		if !ok || !l.DeletionTimestamp.IsZero() {
			desired[i] = inactive(l, ReasonNamespaceNotAdmitted, msg)
			continue
		}
		active[i] = true
		clientTotal += int64(l.Spec.ClientConnections)
		bridgeTotal += int64(l.Spec.BridgeConnections)
		counted = append(counted, l.Namespace+"/"+l.Name)
	}
	pods, leases, err := loadMembers(ctx, r.Client, cl)
	if err != nil {
		return 0, err
	}
	ms := computeMembers(cl, pods, leases, nil, now)
	var cu, bu []license.Usage
	var clientInUse, bridgeInUse int32
	for _, m := range ms.Members {
		cu = append(cu, license.Usage{Member: m.Name, Ready: m.Ready(), InUse: int(m.Client)})
		bu = append(bu, license.Usage{Member: m.Name, Ready: m.Ready(), InUse: int(m.Bridge)})
		clientInUse += m.Client
		bridgeInUse += m.Bridge
	}
	ct, bt := int(min(clientTotal, 1<<31-1)), int(min(bridgeTotal, 1<<31-1))
	// The ideal split, then only as much of it as can be written without a
	// moment of oversubscription (license.Safe: freed licenses move on
	// once their member confirms the lower allocation in its Lease).
	// Decreases that only follow usage wait rebalanceDelay first
	// (license.Damp): loans cover a burst meanwhile.
	hc, hb := heldLicenses(ms.Members, items)
	cluster := types.NamespacedName{Namespace: cl.Namespace, Name: cl.Name}
	idealC := license.Allocate(ct, cu, licenseHeadroom(ct, len(ms.Members)))
	idealB := license.Allocate(bt, bu, licenseHeadroom(bt, len(ms.Members)))
	ic, waitC := r.damp(dampKey{cluster: cluster}, ct, idealC, hc, now)
	ib, waitB := r.damp(dampKey{cluster: cluster, bridge: true}, bt, idealB, hb, now)
	ca, ba := license.Safe(ct, ic, hc), license.Safe(bt, ib, hb)
	balanced := balance(ms.Members, ca, idealC, ba, idealB)

	st := vpnv1alpha1.ConnectionLicenseStatus{
		ClientTotal: int32(ct), BridgeTotal: int32(bt), ClientInUse: clientInUse, BridgeInUse: bridgeInUse,
		Clients: fmt.Sprintf("%d/%d", clientInUse, ct), Bridges: fmt.Sprintf("%d/%d", bridgeInUse, bt),
	}
	for _, m := range ms.Members {
		st.Allocations = append(st.Allocations, vpnv1alpha1.LicenseAllocation{
			Member: m.Name, Client: int32(ca[m.Name]), Bridge: int32(ba[m.Name]),
			ClientInUse: m.Client, BridgeInUse: m.Bridge,
		})
	}
	observeLicenses(cl, &st)
	var exhausted []string
	// A kind with no license bought is refused outright, not "exhausted":
	// only a kind with a total can run out.
	if ct > 0 && int(clientInUse) >= ct {
		exhausted = append(exhausted, fmt.Sprintf("client connections %d/%d in use", clientInUse, ct))
	}
	if bt > 0 && int(bridgeInUse) >= bt {
		exhausted = append(exhausted, fmt.Sprintf("bridge connections %d/%d in use", bridgeInUse, bt))
	}
	for i := range items {
		if !active[i] {
			continue
		}
		s := st
		s.Allocations = slices.Clone(st.Allocations)
		s.Conditions = slices.Clone(items[i].Status.Conditions)
		gen := items[i].Generation
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: vpnv1alpha1.ConditionActive, Status: metav1.ConditionTrue, Reason: ReasonCounted, ObservedGeneration: gen,
			Message: fmt.Sprintf("counted with %d licenses of VPNCluster %s/%s (%s): %d client and %d bridge connections in total", len(counted), cl.Namespace, cl.Name, list(counted), ct, bt)})
		if len(exhausted) > 0 {
			meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: vpnv1alpha1.ConditionExhausted, Status: metav1.ConditionTrue, Reason: ReasonExhausted, ObservedGeneration: gen,
				Message: "licenses exhausted: " + strings.Join(exhausted, "; ") + "; members refuse new sessions of that kind"})
		} else {
			meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: vpnv1alpha1.ConditionExhausted, Status: metav1.ConditionFalse, Reason: ReasonWithinLimit, ObservedGeneration: gen,
				Message: fmt.Sprintf("client %d/%d, bridge %d/%d in use", clientInUse, ct, bridgeInUse, bt)})
		}
		balanced.ObservedGeneration = gen
		meta.SetStatusCondition(&s.Conditions, balanced)
		desired[i] = s
	}
	return soonest(ms.requeueAfter(now), waitC, waitB), nil
}

// balance is the Balanced condition: whether the allocations written are
// the split wanted for the current usage, and if not which are moving.
func balance(members []memberView, client, idealClient, bridge, idealBridge map[string]int) metav1.Condition {
	var moving []string
	for _, m := range members {
		if a, b := client[m.Name], idealClient[m.Name]; a != b {
			moving = append(moving, fmt.Sprintf("%s client %d→%d", m.Name, a, b))
		}
		if a, b := bridge[m.Name], idealBridge[m.Name]; a != b {
			moving = append(moving, fmt.Sprintf("%s bridge %d→%d", m.Name, a, b))
		}
	}
	if len(moving) == 0 {
		return metav1.Condition{Type: vpnv1alpha1.ConditionBalanced, Status: metav1.ConditionTrue, Reason: ReasonBalanced,
			Message: "the allocations follow the members' usage"}
	}
	return metav1.Condition{Type: vpnv1alpha1.ConditionBalanced, Status: metav1.ConditionFalse, Reason: ReasonMoving,
		Message: fmt.Sprintf("allocations moving toward usage: %s. A member's allocation is lowered once its usage has stayed lower for %s, and what it frees goes to the others once it confirms; a license on loan moves once it is given back. Members borrow from each other meanwhile", strings.Join(moving, ", "), rebalanceDelay)}
}

// heldLicenses is what each member may hold of each kind: the allocation
// last written, the one its Lease reports applied, its use and its loans.
// Every license of a cluster carries the same list, but a pass may have
// written only some of them (or the cache may lag one), so the highest
// figure of any counts. A loan counts at its lender as the most that its own
// report or its borrowers' show, and comes off a borrower's use only when
// its lender is still a member (one that is gone reserves nothing).
func heldLicenses(members []memberView, items []vpnv1alpha1.ConnectionLicense) (client, bridge []license.Held) {
	written := map[string]vpnv1alpha1.LicenseAllocation{}
	for i := range items {
		for _, a := range items[i].Status.Allocations {
			w := written[a.Member]
			w.Client, w.Bridge = max(w.Client, a.Client), max(w.Bridge, a.Bridge)
			written[a.Member] = w
		}
	}
	isMember := map[string]bool{}
	for _, m := range members {
		isMember[m.Name] = true
	}
	lentTo := map[string]memberlease.HubLoad{}   // lender -> what borrowers report
	borrowed := map[string]memberlease.HubLoad{} // borrower -> from lenders that are members
	for _, m := range members {
		for lender, n := range m.Load.Borrowed {
			if !isMember[lender] || lender == m.Name {
				continue
			}
			l, b := lentTo[lender], borrowed[m.Name]
			l.Client, l.Bridge = l.Client+n.Client, l.Bridge+n.Bridge
			b.Client, b.Bridge = b.Client+n.Client, b.Bridge+n.Bridge
			lentTo[lender], borrowed[m.Name] = l, b
		}
	}
	for _, m := range members {
		ac, ab := -1, -1
		if a := m.Load.Licenses; a != nil {
			ac, ab = int(a.Client), int(a.Bridge)
		}
		lc, lb := lentTo[m.Name].Client, lentTo[m.Name].Bridge
		if l := m.Load.Lent; l != nil {
			lc, lb = max(lc, l.Client), max(lb, l.Bridge)
		}
		w, b, ready := written[m.Name], borrowed[m.Name], m.Ready()
		client = append(client, license.Held{Member: m.Name, Written: int(w.Client), Applied: ac, InUse: int(m.Client), Lent: int(lc), Borrowed: int(b.Client), Ready: ready})
		bridge = append(bridge, license.Held{Member: m.Name, Written: int(w.Bridge), Applied: ab, InUse: int(m.Bridge), Lent: int(lb), Borrowed: int(b.Bridge), Ready: ready})
	}
	return client, bridge
}
