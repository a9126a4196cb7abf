// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Deleting a cluster cleans up: namespaced objects are owned by the cluster
// (the garbage collector deletes them; envtest runs none, so the test checks
// the owner references), and the finalizer deletes what owner references
// cannot reach — the cluster-scoped member RBAC, RoleBindings in hub
// namespaces, and member Leases — before the cluster goes.
func TestDeletingClusterCleansUp(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	tenant := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 1, func(c *vpnv1alpha1.VPNCluster) {
		c.Spec.HubNamespaces.From = vpnv1alpha1.NamespacesFromAll
	})
	startMembers(t, cl)
	newHub(t, tenant, "hub", cl, vpnv1alpha1.HubDynamic)
	placedHub(t, tenant, "hub")

	crName := memberClusterRoleName(cl)
	eventually(t, wait, "cluster-wide member RBAC", func() error {
		if err := k8s.Get(ctx(), client.ObjectKey{Name: crName}, &rbacv1.ClusterRole{}); err != nil {
			return err
		}
		if err := k8s.Get(ctx(), client.ObjectKey{Name: crName}, &rbacv1.ClusterRoleBinding{}); err != nil {
			return err
		}
		// Secrets of the tenant namespace, and only there.
		return k8s.Get(ctx(), client.ObjectKey{Namespace: tenant, Name: crName}, &rbacv1.RoleBinding{})
	})
	got := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
	if !controllerutil.ContainsFinalizer(got, vpnv1alpha1.Finalizer) {
		t.Fatal("cluster has no finalizer")
	}
	owned := []client.Object{&appsv1.StatefulSet{}, &corev1.Service{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{},
		&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}, &corev1.Secret{}, &corev1.Secret{}, &corev1.Secret{}, &corev1.Secret{}}
	names := []string{"vpn-member", "vpn", "vpn-members", "vpn-member", "vpn-member", "vpn-member", "vpn-member", "vpn-ca", "vpn-tls", "vpn-peer", "vpn-ticket-key"}
	for i, o := range owned {
		get(t, o, ns, names[i])
		if ref := metav1.GetControllerOf(o); ref == nil || ref.UID != got.UID {
			t.Errorf("%T %s is not owned by the cluster (%v): it would outlive it", o, names[i], ref)
		}
	}

	if err := k8s.Delete(ctx(), got); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "cluster gone after its finalizer ran", func() error {
		err := k8s.Get(ctx(), client.ObjectKeyFromObject(got), &vpnv1alpha1.VPNCluster{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster still there: %v", err)
		}
		return nil
	})
	for _, o := range []client.Object{&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: crName}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: crName}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: crName}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn-member-0"}}} {
		if err := k8s.Get(ctx(), client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s survived the cluster: %v", o, o.GetName(), err)
		}
	}
	// The hub stays (it is the tenant's) and says why it is not scheduled.
	eventually(t, wait, "hub reports the missing cluster", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, tenant, "hub")
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionScheduled, metav1.ConditionFalse, ReasonClusterNotFound)
	})
}
