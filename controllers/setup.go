// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package controllers holds hubfleet's reconcilers: one per kind (VPNCluster,
// VirtualHub, ConnectionLicense), one file per concern.
//
// The VirtualHub and ConnectionLicense reconcilers are keyed by cluster, not
// by object: placement and license allocation are cluster-wide computations
// (where one hub goes depends on every other hub; every license of a cluster
// shows the same totals), so every event — a hub created, a pod turning not
// Ready, a Lease expiring — enqueues its cluster, and one reconcile decides
// for all of the cluster's objects at once.
package controllers

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// Options configure the reconcilers.
type Options struct {
	// MemberImage is the image member pods run when a VPNCluster sets no spec.image.
	MemberImage string
	// OperatorNamespace is where the operator runs.
	OperatorNamespace string
	// PlacementWorkers is how many VirtualHub status writes run at once after
	// a placement (default 64): one member failure moves ~100 hubs, and each
	// write is bound by API-server latency, not by our CPU, so ~100 writes in
	// flight at once finish in about two round trips. hack/bench-operator.sh
	// compares worker counts; the figures are in docs/benchmarks-operator.md.
	PlacementWorkers int
}

// indexClusterKey indexes VirtualHubs and ConnectionLicenses by the
// "namespace/name" of the VPNCluster they refer to.
const indexClusterKey = "vpn.hubfleet.io/cluster-key"

// Setup registers every hubfleet reconciler with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.PlacementWorkers <= 0 {
		opts.PlacementWorkers = 64
	}
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &vpnv1alpha1.VirtualHub{}, indexClusterKey, func(o client.Object) []string {
		h := o.(*vpnv1alpha1.VirtualHub)
		return []string{clusterKeyOf(h.Spec.ClusterRef, h.Namespace).String()}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &vpnv1alpha1.ConnectionLicense{}, indexClusterKey, func(o client.Object) []string {
		l := o.(*vpnv1alpha1.ConnectionLicense)
		return []string{clusterKeyOf(l.Spec.ClusterRef, l.Namespace).String()}
	}); err != nil {
		return err
	}

	c := mgr.GetClient()
	recorder := mgr.GetEventRecorder("hubfleet-operator")
	byMember := handler.EnqueueRequestsFromMapFunc(memberToCluster)
	toSelf := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
	})
	byNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		return selectorClusters(ctx, c)
	})

	cr := &VPNClusterReconciler{Client: c, APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: recorder, Options: opts}
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&vpnv1alpha1.VPNCluster{}).
		Owns(&appsv1.StatefulSet{}).Owns(&corev1.Service{}).Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&corev1.ServiceAccount{}).Owns(&rbacv1.Role{}).Owns(&rbacv1.RoleBinding{}).
		Watches(&corev1.Pod{}, byMember).
		Watches(&coordinationv1.Lease{}, byMember, builderPredicate(leaseChanged)).
		// Hub counts in the cluster status may lag by a second; batching hub
		// events keeps a burst of 10,000 placements from re-running the
		// cluster phases thousands of times.
		Watches(&vpnv1alpha1.VirtualHub{}, delayedHandler{delay: time.Second}, builderPredicate(notSessionsOnly)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(cr); err != nil {
		return err
	}

	hr := &VirtualHubReconciler{Client: c, Recorder: recorder, Workers: opts.PlacementWorkers, written: map[types.UID]writtenStatus{}}
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("virtualhub").
		Watches(&vpnv1alpha1.VirtualHub{}, handler.EnqueueRequestsFromMapFunc(hubToCluster), builderPredicate(specChanged)).
		Watches(&vpnv1alpha1.VPNCluster{}, toSelf).
		Watches(&corev1.Pod{}, byMember).
		Watches(&coordinationv1.Lease{}, byMember, builderPredicate(leaseChanged)).
		Watches(&corev1.Namespace{}, byNamespace, builderPredicate(labelsChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(hr); err != nil {
		return err
	}

	lr := &ConnectionLicenseReconciler{Client: c, Recorder: recorder}
	return ctrl.NewControllerManagedBy(mgr).
		Named("connectionlicense").
		Watches(&vpnv1alpha1.ConnectionLicense{}, handler.EnqueueRequestsFromMapFunc(licenseToCluster), builderPredicate(specChanged)).
		Watches(&vpnv1alpha1.VPNCluster{}, toSelf).
		Watches(&corev1.Pod{}, byMember).
		Watches(&coordinationv1.Lease{}, byMember, builderPredicate(leaseChanged)).
		Watches(&corev1.Namespace{}, byNamespace, builderPredicate(labelsChanged)).
		Complete(lr)
}

// memberToCluster maps a member pod or Lease to its cluster by label.
func memberToCluster(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[memberpod.LabelCluster]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

func hubToCluster(_ context.Context, o client.Object) []reconcile.Request {
	h := o.(*vpnv1alpha1.VirtualHub)
	return []reconcile.Request{{NamespacedName: clusterKeyOf(h.Spec.ClusterRef, h.Namespace)}}
}

func licenseToCluster(_ context.Context, o client.Object) []reconcile.Request {
	l := o.(*vpnv1alpha1.ConnectionLicense)
	return []reconcile.Request{{NamespacedName: clusterKeyOf(l.Spec.ClusterRef, l.Namespace)}}
}

// selectorClusters are the clusters whose admission depends on namespace
// labels.
func selectorClusters(ctx context.Context, c client.Reader) []reconcile.Request {
	var list vpnv1alpha1.VPNClusterList
	if err := c.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Spec.HubNamespaces.From == vpnv1alpha1.NamespacesFromSelector {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

// leaseChanged lets through the Lease events that change a verdict: a new or
// deleted Lease, a new holder, a new load report, or a renewal of a Lease
// that had expired (the member is back). Plain renewals are dropped — the
// reconcilers requeue themselves for the next expiry instead — so 100 members
// renewing every 2 s cause no work.
func leaseChanged(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*coordinationv1.Lease)
	n, ok2 := e.ObjectNew.(*coordinationv1.Lease)
	if !ok1 || !ok2 {
		return true
	}
	if o.Annotations[memberpod.AnnotationLoad] != n.Annotations[memberpod.AnnotationLoad] ||
		ptrDiff(o.Spec.HolderIdentity, n.Spec.HolderIdentity) || !n.DeletionTimestamp.IsZero() {
		return true
	}
	if o.Spec.RenewTime == nil || o.Spec.LeaseDurationSeconds == nil {
		return true
	}
	expiry := o.Spec.RenewTime.Add(time.Duration(*o.Spec.LeaseDurationSeconds) * time.Second)
	return !time.Now().Before(expiry)
}

func ptrDiff[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a != b
	}
	return *a != *b
}

// specChanged drops updates that changed only the status — the operator's own
// writes — so a placement that writes 100 hubs does not trigger 100 more.
func specChanged(e event.UpdateEvent) bool {
	return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
		!e.ObjectNew.GetDeletionTimestamp().IsZero()
}

func labelsChanged(e event.UpdateEvent) bool {
	o, n := e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()
	if len(o) != len(n) {
		return true
	}
	for k, v := range o {
		if n[k] != v {
			return true
		}
	}
	return false
}

// builderPredicate filters update events only; creates and deletes always
// pass.
func builderPredicate(update func(event.UpdateEvent) bool) builder.Predicates {
	return builder.WithPredicates(predicate.Funcs{UpdateFunc: update})
}

// delayedHandler enqueues a hub's cluster after a delay; the queue merges
// every event of that second into one reconcile.
type delayedHandler struct{ delay time.Duration }

func (d delayedHandler) add(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	for _, r := range hubToCluster(context.Background(), o) {
		q.AddAfter(r, d.delay)
	}
}
func (d delayedHandler) Create(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	d.add(e.Object, q)
}
func (d delayedHandler) Update(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	d.add(e.ObjectNew, q)
}
func (d delayedHandler) Delete(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	d.add(e.Object, q)
}
func (d delayedHandler) Generic(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	d.add(e.Object, q)
}

// listClusterHubs lists the VirtualHubs referring to cl (any namespace).
func listClusterHubs(ctx context.Context, c client.Reader, cl *vpnv1alpha1.VPNCluster) ([]vpnv1alpha1.VirtualHub, error) {
	var list vpnv1alpha1.VirtualHubList
	// Read-only use: no deep copy of every cached hub.
	err := c.List(ctx, &list, client.MatchingFields{indexClusterKey: client.ObjectKeyFromObject(cl).String()}, client.UnsafeDisableDeepCopy)
	return list.Items, err
}

// admittedNamespaces filters nss down to those cl admits.
func admittedNamespaces(ctx context.Context, c client.Reader, cl *vpnv1alpha1.VPNCluster, nss []string) ([]string, error) {
	var out []string
	for _, ns := range nss {
		ok, _, err := admits(ctx, c, cl, ns)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ns)
		}
	}
	return out, nil
}

// admits is admission with the Namespace read from the cache when needed.
func admits(ctx context.Context, c client.Reader, cl *vpnv1alpha1.VPNCluster, ns string) (bool, string, error) {
	var nsObj *corev1.Namespace
	if cl.Spec.HubNamespaces.From == vpnv1alpha1.NamespacesFromSelector {
		nsObj = &corev1.Namespace{}
		if err := c.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return false, "", err
			}
			nsObj = nil
		}
	}
	ok, msg := admission(cl, ns, nsObj)
	return ok, msg, nil
}

// holdingMembers names members that hold a hub instance: evidence they were up.
func holdingMembers(hubs []vpnv1alpha1.VirtualHub) map[string]bool {
	out := map[string]bool{}
	for i := range hubs {
		if m := hubs[i].Status.AssignedMember; m != "" {
			out[m] = true
		}
		for _, in := range hubs[i].Status.Instances {
			out[in.Member] = true
		}
	}
	return out
}
