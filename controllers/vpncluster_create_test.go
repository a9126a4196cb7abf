// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/certs"
)

// Creating a cluster creates its member StatefulSet, both Services, the PDB,
// the member RBAC and the certificate Secrets, and reports members as they
// come up.
func TestClusterCreatesMembersServicesPDBSecrets(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 3, func(c *vpnv1alpha1.VPNCluster) {
		c.Spec.Service.Type = corev1.ServiceTypeLoadBalancer
		c.Spec.Port = 4443
	})

	sts := &appsv1.StatefulSet{}
	eventually(t, wait, "StatefulSet", func() error { return k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "vpn-member"}, sts) })
	if *sts.Spec.Replicas != 3 || sts.Spec.ServiceName != "vpn-members" {
		t.Errorf("StatefulSet replicas %d serviceName %q", *sts.Spec.Replicas, sts.Spec.ServiceName)
	}
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"member", "--cluster", "vpn"}) || c.Image != "hubfleet:test" {
		t.Errorf("member container args %q image %q", c.Args, c.Image)
	}
	// Readiness is the member's own answer (fenced = not ready), not a TCP
	// connect a frozen process passes.
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.StrVal != "metrics" ||
		p.PeriodSeconds != 1 || p.FailureThreshold != 2 || p.TimeoutSeconds != 1 {
		t.Errorf("member readiness probe %+v, want HTTP GET /readyz on metrics every 1 s, 2 failures, 1 s timeout", p)
	}
	if pod.ServiceAccountName != "vpn-member" || pod.SecurityContext == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("member pod must run non-root as vpn-member: %+v", pod.SecurityContext)
	}
	if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil {
		t.Error("member pods have no anti-affinity by default")
	}
	// The UDP data channel: the VPN port's number, for UDP, by its own name.
	var udpPort *corev1.ContainerPort
	for i, p := range c.Ports {
		if p.Protocol == corev1.ProtocolUDP {
			udpPort = &c.Ports[i]
		}
	}
	if udpPort == nil || udpPort.Name != "vpn-udp" || udpPort.ContainerPort != 8443 {
		t.Errorf("member container ports %+v: want vpn-udp 8443/UDP", c.Ports)
	}
	var vols []string
	for _, v := range pod.Volumes {
		vols = append(vols, v.Secret.SecretName)
	}
	if !slices.Equal(vols, []string{"vpn-tls", "vpn-peer", "vpn-ticket-key"}) {
		t.Errorf("mounted Secrets %q", vols)
	}
	for _, o := range []client.Object{sts} {
		if ref := metav1.GetControllerOf(o); ref == nil || ref.Name != "vpn" || ref.Kind != "VPNCluster" {
			t.Errorf("%s is not owned by the cluster: %v", o.GetName(), ref)
		}
	}

	headless := get(t, &corev1.Service{}, ns, "vpn-members")
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("headless Service: clusterIP %q publishNotReady %v", headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
	}
	svc := get(t, &corev1.Service{}, ns, "vpn")
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.Ports[0].Port != 4443 || svc.Spec.Ports[0].TargetPort.StrVal != "vpn" {
		t.Errorf("client Service %s %+v", svc.Spec.Type, svc.Spec.Ports)
	}
	// UDP beside TCP on the same number (a mixed-protocol LoadBalancer).
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[1].Protocol != corev1.ProtocolUDP || svc.Spec.Ports[1].Port != 4443 ||
		svc.Spec.Ports[1].TargetPort.StrVal != "vpn-udp" {
		t.Errorf("client Service ports %+v: want vpn 4443/TCP and vpn-udp 4443/UDP", svc.Spec.Ports)
	}
	pdb := get(t, &policyv1.PodDisruptionBudget{}, ns, "vpn-member")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v", pdb.Spec.MaxUnavailable)
	}
	get(t, &corev1.ServiceAccount{}, ns, "vpn-member")
	role := get(t, &rbacv1.Role{}, ns, "vpn-member")
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v == "delete" || v == "*" || (v == "update" && len(r.ResourceNames) == 0) {
				t.Errorf("member Role grants %s on %v without names: not least privilege", v, r.Resources)
			}
		}
	}
	get(t, &rbacv1.RoleBinding{}, ns, "vpn-member")

	// Certificates: the serving certificate chains to the CA and names the
	// Service; the status carries the CA fingerprint clients pin.
	caSec := get(t, &corev1.Secret{}, ns, "vpn-ca")
	ca, err := certs.ParseCA(caSec.Data["ca.crt"], caSec.Data["ca.key"])
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "serving certificate with the Service IP", func() error {
		tls := get(t, &corev1.Secret{}, ns, "vpn-tls")
		if tls.Type != corev1.SecretTypeTLS {
			return fmt.Errorf("type %s", tls.Type)
		}
		names := []string{"vpn", "vpn." + ns + ".svc", "vpn." + ns + ".svc.cluster.local", "vpn-member-0.vpn-members." + ns + ".svc", "localhost"}
		if svc.Spec.ClusterIP != "" {
			names = append(names, svc.Spec.ClusterIP)
		}
		return ca.Verify(tls.Data["tls.crt"], names, ca.Cert.NotBefore.Add(certs.Backdate+1))
	})
	peer := get(t, &corev1.Secret{}, ns, "vpn-peer")
	if err := ca.Verify(peer.Data["tls.crt"], []string{"vpn-member"}, ca.Cert.NotBefore.Add(certs.Backdate+1)); err != nil {
		t.Errorf("peer certificate: %v", err)
	}
	if k := get(t, &corev1.Secret{}, ns, "vpn-ticket-key").Data["ticket.key"]; len(k) != 32 {
		t.Errorf("ticket key is %d bytes", len(k))
	}

	eventually(t, wait, "status before members run", func() error {
		got := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
		if got.Status.CAFingerprint != certs.FingerprintSHA256(ca.Cert.Raw) {
			return fmt.Errorf("caFingerprint %q", got.Status.CAFingerprint)
		}
		if got.Status.ObservedGeneration != got.Generation || got.Status.Ready != "0/3" {
			return fmt.Errorf("observedGeneration %d ready %q", got.Status.ObservedGeneration, got.Status.Ready)
		}
		if err := condIs(got.Status.Conditions, vpnv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonMembersStarting); err != nil {
			return err
		}
		return condIs(got.Status.Conditions, vpnv1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNoMemberReady)
	})

	for i := range 3 {
		startMember(t, cl, i)
	}
	eventually(t, wait, "all members ready", func() error {
		got := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")
		if got.Status.Ready != "3/3" || len(got.Status.Members) != 3 || got.Status.Members[0].State != vpnv1alpha1.MemberReady {
			return fmt.Errorf("ready %q members %+v", got.Status.Ready, got.Status.Members)
		}
		if got.Status.Members[0].Point != 100000 {
			return fmt.Errorf("an idle member's point is %d, want 100000", got.Status.Members[0].Point)
		}
		if err := condIs(got.Status.Conditions, vpnv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonStable); err != nil {
			return err
		}
		if err := condIs(got.Status.Conditions, vpnv1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonNoMemberFailed); err != nil {
			return err
		}
		return condIs(got.Status.Conditions, vpnv1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonMembersReady)
	})
	eventually(t, wait, "MemberReady Event", func() error { return eventFor(ns, "vpn", ReasonMemberReadyEvent, "vpn-member-2") })
}
