// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// Names of the objects the operator creates for a cluster. They are derived
// from the cluster name alone, so every reconciler (and the member) can find
// them without a lookup.
func stsName(c *vpnv1alpha1.VPNCluster) string { return c.Name + "-member" }
func memberName(c *vpnv1alpha1.VPNCluster, i int) string {
	return memberpod.MemberName(c.Name, i)
}
func headlessName(c *vpnv1alpha1.VPNCluster) string        { return c.Name + "-members" }
func clientServiceName(c *vpnv1alpha1.VPNCluster) string   { return c.Name }
func pdbName(c *vpnv1alpha1.VPNCluster) string             { return c.Name + "-member" }
func memberSAName(c *vpnv1alpha1.VPNCluster) string        { return c.Name + "-member" }
func memberRoleName(c *vpnv1alpha1.VPNCluster) string      { return c.Name + "-member" }
func caSecretName(c *vpnv1alpha1.VPNCluster) string        { return c.Name + "-ca" }
func tlsSecretName(c *vpnv1alpha1.VPNCluster) string       { return c.Name + "-tls" }
func peerSecretName(c *vpnv1alpha1.VPNCluster) string      { return c.Name + "-peer" }
func ticketKeySecretName(c *vpnv1alpha1.VPNCluster) string { return c.Name + "-ticket-key" }

// peerName is the name in the shared mesh certificate; members dial each
// other with it as tls.Config.ServerName.
func peerName(c *vpnv1alpha1.VPNCluster) string { return c.Name + "-member" }

// memberClusterRoleName names the cluster-scoped role of a cluster's members.
// Cluster-scoped names must be unique across namespaces, hence both parts.
func memberClusterRoleName(c *vpnv1alpha1.VPNCluster) string {
	return "hubfleet-member:" + c.Namespace + ":" + c.Name
}

// servingSecretName is the Secret members serve clients with: the user's
// (spec.tls) or the one the operator issues.
func servingSecretName(c *vpnv1alpha1.VPNCluster) string {
	if c.Spec.TLS != nil {
		return c.Spec.TLS.SecretName
	}
	return tlsSecretName(c)
}

// memberIndex parses "<cluster>-member-<i>"; ok is false for any other name.
func memberIndex(c *vpnv1alpha1.VPNCluster, name string) (int, bool) {
	rest, found := strings.CutPrefix(name, c.Name+"-member-")
	if !found {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || strconv.Itoa(i) != rest {
		return 0, false
	}
	return i, true
}

const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelComponent = "app.kubernetes.io/component"
	labelManagedBy = "app.kubernetes.io/managed-by"
	// labelClusterNamespace marks cluster-scoped and cross-namespace objects
	// with their cluster's namespace, so the finalizer can find them.
	labelClusterNamespace = "vpn.hubfleet.io/cluster-namespace"

	fieldOwner = "hubfleet-operator"
)

// selectorLabels select a cluster's member pods; they never change, because a
// StatefulSet's selector is immutable.
func selectorLabels(c *vpnv1alpha1.VPNCluster) map[string]string {
	return map[string]string{
		memberpod.LabelCluster: c.Name,
		labelComponent:         "member",
	}
}

// objectLabels go on everything the operator creates for a cluster.
func objectLabels(c *vpnv1alpha1.VPNCluster) map[string]string {
	return map[string]string{
		labelName:              "hubfleet",
		labelInstance:          c.Name,
		labelManagedBy:         "hubfleet-operator",
		memberpod.LabelCluster: c.Name,
	}
}

func ownerRef(c *vpnv1alpha1.VPNCluster) metav1.OwnerReference {
	return *metav1.NewControllerRef(c, vpnv1alpha1.GroupVersion.WithKind("VPNCluster"))
}

// clusterKeyOf is the VPNCluster a hub or license refers to; a reference
// without a namespace means the referring object's own.
func clusterKeyOf(ref vpnv1alpha1.ClusterReference, ns string) types.NamespacedName {
	if ref.Namespace != "" {
		ns = ref.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: ref.Name}
}

// maxUnavailable: memberpod.MaxUnavailable, shared with the members.
func maxUnavailable(c *vpnv1alpha1.VPNCluster) int {
	return memberpod.MaxUnavailable(c.Spec.Failover.MaxUnavailable, int(c.Spec.Members))
}

func leaseDuration(c *vpnv1alpha1.VPNCluster) int32 {
	if d := c.Spec.Failover.LeaseDurationSeconds; d > 0 {
		return d
	}
	return memberpod.DefaultLeaseDurationSeconds
}

// admission decides whether a cluster accepts objects from namespace ns
// (nsObj may be nil when the cluster does not need its labels). The message
// names the rule, for a refused object's Scheduled/Active condition.
func admission(c *vpnv1alpha1.VPNCluster, ns string, nsObj *corev1.Namespace) (bool, string) {
	switch c.Spec.HubNamespaces.From {
	case vpnv1alpha1.NamespacesFromAll:
		return true, ""
	case vpnv1alpha1.NamespacesFromSelector:
		sel, err := metav1.LabelSelectorAsSelector(c.Spec.HubNamespaces.Selector)
		if err != nil {
			return false, fmt.Sprintf("VPNCluster %s/%s has an invalid hubNamespaces.selector: %v", c.Namespace, c.Name, err)
		}
		if nsObj == nil || !sel.Matches(labels.Set(nsObj.Labels)) {
			return false, fmt.Sprintf("namespace %q does not match hubNamespaces.selector (%s) of VPNCluster %s/%s", ns, sel, c.Namespace, c.Name)
		}
		return true, ""
	default: // Same, or unset before defaulting
		if ns != c.Namespace {
			return false, fmt.Sprintf("VPNCluster %s/%s admits only its own namespace (hubNamespaces.from: Same); %q is another namespace", c.Namespace, c.Name, ns)
		}
		return true, ""
	}
}
