// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/license"
)

// Condition reasons of a ConnectionLicense.
const (
	ReasonCounted     = "Counted"
	ReasonExhausted   = "Exhausted"
	ReasonWithinLimit = "WithinLimit"
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
	hc, hb := heldLicenses(ms.Members, items)
	ca := license.Safe(ct, license.Allocate(ct, cu, licenseHeadroom(ct, len(ms.Members))), hc)
	ba := license.Safe(bt, license.Allocate(bt, bu, licenseHeadroom(bt, len(ms.Members))), hb)

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
		desired[i] = s
	}
	return ms.requeueAfter(now), nil
}

// heldLicenses is what each member may hold of each kind: the allocation
// last written, the one its Lease reports applied, and its use. Every license
// of a cluster carries the same list, but a pass may have written only some
// of them (or the cache may lag one), so the highest figure of any counts.
func heldLicenses(members []memberView, items []vpnv1alpha1.ConnectionLicense) (client, bridge []license.Held) {
	written := map[string]vpnv1alpha1.LicenseAllocation{}
	for i := range items {
		for _, a := range items[i].Status.Allocations {
			w := written[a.Member]
			w.Client, w.Bridge = max(w.Client, a.Client), max(w.Bridge, a.Bridge)
			written[a.Member] = w
		}
	}
	for _, m := range members {
		ac, ab := -1, -1
		if a := m.Load.Licenses; a != nil {
			ac, ab = int(a.Client), int(a.Bridge)
		}
		w := written[m.Name]
		client = append(client, license.Held{Member: m.Name, Written: int(w.Client), Applied: ac, InUse: int(m.Client)})
		bridge = append(bridge, license.Held{Member: m.Name, Written: int(w.Bridge), Applied: ab, InUse: int(m.Bridge)})
	}
	return client, bridge
}
