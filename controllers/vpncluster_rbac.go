// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// reconcileMemberRBAC gives the members' ServiceAccount exactly what a member
// does: read hubs, licenses, its own cluster and Secrets (hub users, its
// certificates), and create and renew its own Lease.
//
// Secrets: the hubs' user Secrets have names chosen by tenants, so the Role
// cannot list them by resourceNames; members may read every Secret of the
// namespaces holding their hubs. That is the price of members reading user
// hashes through informers (no operator round trip on login); put clusters in
// namespaces of their own. Leases: create cannot be limited by name (the
// name is not known at authorisation time), but get and update are limited to
// the member names. A member may update a peer's Lease and patch hub statuses
// because it moves a dead peer's dynamic hubs itself when the operator is
// absent (docs/design-operator.md, "Failover without the operator"): a
// compromised member could misroute its cluster's hubs, never read or change
// their specs or another cluster's objects.
//
// With hubNamespaces All or Selector, members read VirtualHubs and
// ConnectionLicenses cluster-wide (a ClusterRole and ClusterRoleBinding named
// after the cluster's namespace and name), and Secrets only in namespaces that
// hold an admitted hub of the cluster (a RoleBinding there to a second
// ClusterRole). Cluster-scoped and cross-namespace objects cannot be owned by
// the namespaced VPNCluster, so they carry labels and the finalizer deletes
// them.
func (r *VPNClusterReconciler) reconcileMemberRBAC(ctx context.Context, cl *vpnv1alpha1.VPNCluster, hubNamespaces []string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: r.meta(cl, memberSAName(cl))}
	if err := r.applyLogged(ctx, cl, sa); err != nil {
		return err
	}
	members := make([]string, cl.Spec.Members)
	for i := range members {
		members[i] = memberlease.LeaseName(memberName(cl, i))
	}
	read := []string{"get", "list", "watch"}
	role := &rbacv1.Role{ObjectMeta: r.meta(cl, memberRoleName(cl)), Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{vpnv1alpha1.GroupVersion.Group}, Resources: []string{"virtualhubs", "connectionlicenses"}, Verbs: read},
		{APIGroups: []string{vpnv1alpha1.GroupVersion.Group}, Resources: []string{"vpnclusters"}, Verbs: read, ResourceNames: []string{cl.Name}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: read},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "update"}, ResourceNames: members},
		// Failover without the operator: members watch each other's Leases,
		// claim a dead peer's (update, by name above) and move its dynamic
		// hubs by writing their status — status only, never specs.
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{vpnv1alpha1.GroupVersion.Group}, Resources: []string{"virtualhubs/status"}, Verbs: []string{"patch"}},
	}}
	if err := r.applyLogged(ctx, cl, role); err != nil {
		return err
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: memberSAName(cl), Namespace: cl.Namespace}}
	rb := &rbacv1.RoleBinding{ObjectMeta: r.meta(cl, memberRoleName(cl)), Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: memberRoleName(cl)}}
	if err := r.applyLogged(ctx, cl, rb); err != nil {
		return err
	}

	if cl.Spec.HubNamespaces.From == vpnv1alpha1.NamespacesFromSame || cl.Spec.HubNamespaces.From == "" {
		return r.deleteClusterWideRBAC(ctx, cl, nil)
	}
	name := memberClusterRoleName(cl)
	secretsRole := "hubfleet-member-secrets:" + cl.Namespace + ":" + cl.Name
	crs := []*rbacv1.ClusterRole{
		{ObjectMeta: r.clusterMeta(cl, name), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{vpnv1alpha1.GroupVersion.Group}, Resources: []string{"virtualhubs", "connectionlicenses"}, Verbs: read},
			{APIGroups: []string{vpnv1alpha1.GroupVersion.Group}, Resources: []string{"virtualhubs/status"}, Verbs: []string{"patch"}},
		}},
		{ObjectMeta: r.clusterMeta(cl, secretsRole), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: read},
		}},
	}
	for _, cr := range crs {
		if err := r.applyLogged(ctx, cl, cr); err != nil {
			return err
		}
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: r.clusterMeta(cl, name), Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
	if err := r.applyLogged(ctx, cl, crb); err != nil {
		return err
	}
	var keep []string
	for _, ns := range hubNamespaces {
		if ns == cl.Namespace {
			continue
		}
		keep = append(keep, ns)
		m := r.clusterMeta(cl, name)
		m.Namespace = ns
		b := &rbacv1.RoleBinding{ObjectMeta: m, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: secretsRole}}
		if err := r.applyLogged(ctx, cl, b); err != nil {
			return err
		}
	}
	return r.deleteRoleBindingsOutside(ctx, cl, keep)
}

// clusterMeta is the metadata of a cluster-scoped or cross-namespace object:
// no owner reference (not allowed across scopes), labels for the finalizer.
func (r *VPNClusterReconciler) clusterMeta(cl *vpnv1alpha1.VPNCluster, name string) metav1.ObjectMeta {
	l := objectLabels(cl)
	l[labelClusterNamespace] = cl.Namespace
	return metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{}}
}

func clusterWideSelector(cl *vpnv1alpha1.VPNCluster) client.MatchingLabels {
	return client.MatchingLabels{memberpod.LabelCluster: cl.Name, labelClusterNamespace: cl.Namespace}
}

// deleteClusterWideRBAC removes the cluster-scoped roles and bindings and the
// RoleBindings in hub namespaces other than keep.
func (r *VPNClusterReconciler) deleteClusterWideRBAC(ctx context.Context, cl *vpnv1alpha1.VPNCluster, keep []string) error {
	var crbs rbacv1.ClusterRoleBindingList
	if err := r.Client.List(ctx, &crbs, clusterWideSelector(cl)); err != nil {
		return err
	}
	for i := range crbs.Items {
		if err := r.Client.Delete(ctx, &crbs.Items[i]); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	var crs rbacv1.ClusterRoleList
	if err := r.Client.List(ctx, &crs, clusterWideSelector(cl)); err != nil {
		return err
	}
	for i := range crs.Items {
		if err := r.Client.Delete(ctx, &crs.Items[i]); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return r.deleteRoleBindingsOutside(ctx, cl, keep)
}

func (r *VPNClusterReconciler) deleteRoleBindingsOutside(ctx context.Context, cl *vpnv1alpha1.VPNCluster, keep []string) error {
	var rbs rbacv1.RoleBindingList
	if err := r.Client.List(ctx, &rbs, clusterWideSelector(cl)); err != nil {
		return err
	}
	for i := range rbs.Items {
		if slices.Contains(keep, rbs.Items[i].Namespace) {
			continue
		}
		if err := r.Client.Delete(ctx, &rbs.Items[i]); client.IgnoreNotFound(err) != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
