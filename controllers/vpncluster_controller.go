// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"errors"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"k8s.io/client-go/tools/events"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// VPNClusterReconciler runs a cluster's members: workload, Services, PDB,
// member RBAC, certificates, and the status that tells a reader who is up.
type VPNClusterReconciler struct {
	Client client.Client
	// APIReader reads Secrets uncached (see reconcileCerts).
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Options   Options

	applied appliedCache
}

// The operator holds every permission it grants members (the RBAC API refuses
// to let anyone grant what it does not hold), hence lease create/update and
// the VPNCluster read below. Owned objects are written by server-side apply
// (patch; create when the apply creates one).
//
// +kubebuilder:rbac:groups=vpn.hubfleet.io,resources=vpnclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=vpn.hubfleet.io,resources=virtualhubs;connectionlicenses,verbs=get;list;watch
// +kubebuilder:rbac:groups=vpn.hubfleet.io,resources=vpnclusters/status;virtualhubs/status;connectionlicenses/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=vpn.hubfleet.io,resources=vpnclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=services;serviceaccounts;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings;clusterroles;clusterrolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile is thin: finalizer first, then the phases, then one status patch
// if (and only if) the status changed.
func (r *VPNClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	cl := &vpnv1alpha1.VPNCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, cl); err != nil {
		if client.IgnoreNotFound(err) == nil {
			forgetMemberMetrics(req.NamespacedName)
			r.applied.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cl.DeletionTimestamp.IsZero() {
		forgetMemberMetrics(req.NamespacedName)
		r.applied.forget(req.NamespacedName)
		return ctrl.Result{}, r.finalize(ctx, cl)
	}
	if !controllerutil.ContainsFinalizer(cl, vpnv1alpha1.Finalizer) {
		patch := client.MergeFrom(cl.DeepCopy())
		controllerutil.AddFinalizer(cl, vpnv1alpha1.Finalizer)
		// The update event brings us back with the finalizer in place.
		return ctrl.Result{}, r.Client.Patch(ctx, cl, patch)
	}

	before := cl.DeepCopy()
	defer func() {
		cl.Status.ObservedGeneration = cl.Generation
		if equality.Semantic.DeepEqual(before.Status, cl.Status) {
			return // the steady state writes nothing
		}
		// The status remembers which members were up (status.go): a pass
		// from a copy older than our last write must not land.
		conflict, perr := patchStatus(ctx, r.Client, cl, before)
		if conflict {
			res, err = ctrl.Result{RequeueAfter: conflictRetry}, nil
			return
		}
		err = errors.Join(err, perr)
	}()
	return r.reconcile(ctx, cl)
}

// reconcile runs the phases in order. A failing phase stops the later ones
// (they depend on it: members need their RBAC and Secrets before pods make
// sense), but the status is still computed so Degraded carries the error.
func (r *VPNClusterReconciler) reconcile(ctx context.Context, cl *vpnv1alpha1.VPNCluster) (ctrl.Result, error) {
	hubs, err := listClusterHubs(ctx, r.Client, cl)
	if err != nil {
		return ctrl.Result{}, err
	}
	var hubNamespaces []string
	for i := range hubs {
		if !slices.Contains(hubNamespaces, hubs[i].Namespace) {
			hubNamespaces = append(hubNamespaces, hubs[i].Namespace)
		}
	}
	slices.Sort(hubNamespaces)
	admitted, err := admittedNamespaces(ctx, r.Client, cl, hubNamespaces)
	if err != nil {
		return ctrl.Result{}, err
	}

	var cr certResult
	phaseErr := r.reconcileMemberRBAC(ctx, cl, admitted)
	if phaseErr == nil {
		var svc corev1.Service
		clusterIP := ""
		if r.Client.Get(ctx, client.ObjectKey{Namespace: cl.Namespace, Name: clientServiceName(cl)}, &svc) == nil {
			clusterIP = svc.Spec.ClusterIP
		}
		cr, phaseErr = r.reconcileCerts(ctx, cl, clusterIP)
	}
	if phaseErr == nil {
		phaseErr = r.reconcileWorkload(ctx, cl)
	}
	if phaseErr == nil {
		phaseErr = r.collectRemovedLeases(ctx, cl)
	}
	if phaseErr != nil {
		log.FromContext(ctx).Error(phaseErr, "reconcile phase failed")
	}

	pods, leases, err := loadMembers(ctx, r.Client, cl)
	if err != nil {
		return ctrl.Result{}, errors.Join(phaseErr, err)
	}
	now := time.Now()
	ms := computeMembers(cl, pods, leases, holdingMembers(hubs), now)
	r.setStatus(cl, &ms, hubs, cr, phaseErr)

	res := ctrl.Result{RequeueAfter: ms.requeueAfter(now)}
	if !cr.renewAt.IsZero() {
		if d := time.Until(cr.renewAt) + time.Second; res.RequeueAfter == 0 || d < res.RequeueAfter {
			res.RequeueAfter = d
		}
	}
	return res, phaseErr
}

// collectRemovedLeases deletes the Leases of members beyond spec.members
// (a scale-down): members do not own their Leases (a pod-owned Lease would be
// garbage-collected with the pod, erasing the evidence that the member was up
// and failed), so the operator tidies them.
func (r *VPNClusterReconciler) collectRemovedLeases(ctx context.Context, cl *vpnv1alpha1.VPNCluster) error {
	var leases coordinationv1.LeaseList
	if err := r.Client.List(ctx, &leases, client.InNamespace(cl.Namespace), client.MatchingLabels{memberpod.LabelCluster: cl.Name}); err != nil {
		return err
	}
	for i := range leases.Items {
		if idx, ok := memberIndex(cl, leases.Items[i].Name); ok && idx >= int(cl.Spec.Members) {
			if err := r.Client.Delete(ctx, &leases.Items[i]); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	return nil
}

// finalize deletes what owner references cannot reach, then lets go.
func (r *VPNClusterReconciler) finalize(ctx context.Context, cl *vpnv1alpha1.VPNCluster) error {
	if !controllerutil.ContainsFinalizer(cl, vpnv1alpha1.Finalizer) {
		return nil
	}
	if err := r.deleteClusterWideRBAC(ctx, cl, nil); err != nil {
		return err
	}
	var leases coordinationv1.LeaseList
	if err := r.Client.List(ctx, &leases, client.InNamespace(cl.Namespace), client.MatchingLabels{memberpod.LabelCluster: cl.Name}); err != nil {
		return err
	}
	for i := range leases.Items {
		if err := r.Client.Delete(ctx, &leases.Items[i]); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	r.Recorder.Eventf(cl, nil, corev1.EventTypeNormal, "Finalized", "Delete", "deleted cluster-wide member RBAC and %d member Leases; owned objects go with the cluster", len(leases.Items))
	patch := client.MergeFrom(cl.DeepCopy())
	controllerutil.RemoveFinalizer(cl, vpnv1alpha1.Finalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, cl, patch))
}
