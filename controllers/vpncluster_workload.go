// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// Member container ports and mount points: the contract with `hubfleet
// member`, shared with it through pkg/memberpod.
const (
	portVPN           = memberpod.PortVPN
	portMesh          = memberpod.PortMesh
	portMetrics       = memberpod.PortMetrics
	pathReady         = memberpod.ReadyPath
	mountTLS          = memberpod.MountTLS
	mountPeer         = memberpod.MountPeer
	mountTicket       = memberpod.MountTicket
	memberUID   int64 = 65532
)

// reconcileWorkload makes the member StatefulSet, the two Services and the
// PodDisruptionBudget match the spec.
//
// Why a StatefulSet rather than pods managed by the operator: members need
// stable names (hubs are assigned to "<cluster>-member-<i>", Leases are named
// after pods, the headless Service gives each a DNS name), and a StatefulSet
// gives exactly that plus rolling updates one member at a time, pod
// re-creation after eviction or node loss, and PDB integration, all without
// the operator in the loop — members keep coming back while the operator is
// down. What we give up (choosing which member to remove on scale-down, or
// replacing a member out of order) placement does not need: a removed
// member's hubs move with reason MemberRemoved.
func (r *VPNClusterReconciler) reconcileWorkload(ctx context.Context, cl *vpnv1alpha1.VPNCluster) error {
	// The client Service's node port: the one the spec pins, else the one
	// the API server allocated to TCP, for UDP too (vpncluster_nodeport.go).
	for _, obj := range []client.Object{r.headlessService(cl), r.clientServiceNodePorts(ctx, cl), r.pdb(cl)} {
		if err := r.applyLogged(ctx, cl, obj); err != nil {
			return err
		}
	}
	sts := r.statefulSet(cl)
	if err := r.bridgePrivileges(ctx, cl, sts); err != nil {
		return err
	}
	// Selector, serviceName and podManagementPolicy are immutable and never
	// change for a cluster.
	return r.applyLogged(ctx, cl, sts)
}

// applyLogged is apply plus an Event naming what was created or updated, so
// `kubectl describe vpncluster` tells the story of the cluster's objects.
//
// Every Event names a related object: the events API folds Events with the
// same regarding object, reason and related object into one series that
// keeps only the first note, so without it the second member's event would
// vanish into the first's.
func (r *VPNClusterReconciler) applyLogged(ctx context.Context, cl *vpnv1alpha1.VPNCluster, desired client.Object) error {
	what, err := r.apply(ctx, client.ObjectKeyFromObject(cl), desired)
	if err != nil {
		return err
	}
	if what != "" {
		kind := fmt.Sprintf("%T", desired)[1:]
		r.Recorder.Eventf(cl, desired, corev1.EventTypeNormal, "Reconciled", "Reconcile", "%s %s %s", what, kind, desired.GetName())
	}
	return nil
}

func (r *VPNClusterReconciler) headlessService(cl *vpnv1alpha1.VPNCluster) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: r.meta(cl, headlessName(cl)),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  selectorLabels(cl),
			// Members find each other for the mesh before they are Ready: a
			// member becomes Ready only once it can serve, which may need peers.
			PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{
				{Name: "vpn", Port: portVPN, TargetPort: intstr.FromString("vpn")},
				{Name: "mesh", Port: portMesh, TargetPort: intstr.FromString("mesh")},
			},
		},
	}
}

func (r *VPNClusterReconciler) clientService(cl *vpnv1alpha1.VPNCluster) *corev1.Service {
	typ := cl.Spec.Service.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	port := cl.Spec.Port
	if port == 0 {
		port = 443
	}
	sp := corev1.ServicePort{Name: "vpn", Port: port, TargetPort: intstr.FromString("vpn"), Protocol: corev1.ProtocolTCP}
	// The UDP data channel: the same port number, so the members advertise
	// "the TCP port's number" and clients need nothing else. kube-proxy
	// balances it apart from TCP; the members forward a datagram that
	// reaches the wrong one over the mesh (pkg/mesh/udp.go).
	up := corev1.ServicePort{Name: memberpod.PortNameVPNUDP, Port: port, TargetPort: intstr.FromString(memberpod.PortNameVPNUDP), Protocol: corev1.ProtocolUDP}
	if cl.Spec.Service.NodePort != nil && typ != corev1.ServiceTypeClusterIP {
		sp.NodePort = *cl.Spec.Service.NodePort
		up.NodePort = sp.NodePort // one node port number may serve TCP and UDP
	}
	ports := []corev1.ServicePort{sp, up}
	if cl.Spec.UDP == vpnv1alpha1.UDPDisabled {
		ports = ports[:1] // spec.udp: Disabled; the members keep every session on TLS
	}
	m := r.meta(cl, clientServiceName(cl))
	maps.Copy(m.Annotations, cl.Spec.Service.Annotations)
	return &corev1.Service{
		ObjectMeta: m,
		Spec: corev1.ServiceSpec{
			Type:                     typ,
			Selector:                 selectorLabels(cl),
			Ports:                    ports,
			LoadBalancerSourceRanges: cl.Spec.Service.LoadBalancerSourceRanges,
		},
	}
}

// pdb lets voluntary disruptions (drains, upgrades) take down at most one
// member at a time: each disrupted member moves its dynamic hubs, and one at
// a time keeps that within the failover guard.
func (r *VPNClusterReconciler) pdb(cl *vpnv1alpha1.VPNCluster) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: r.meta(cl, pdbName(cl)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(cl)},
		},
	}
}

func (r *VPNClusterReconciler) meta(cl *vpnv1alpha1.VPNCluster, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: cl.Namespace,
		Labels:          objectLabels(cl),
		Annotations:     map[string]string{},
		OwnerReferences: []metav1.OwnerReference{ownerRef(cl)},
	}
}

func (r *VPNClusterReconciler) statefulSet(cl *vpnv1alpha1.VPNCluster) *appsv1.StatefulSet {
	image := cl.Spec.Image
	if image == "" {
		image = r.Options.MemberImage
	}
	podLabels := objectLabels(cl)
	maps.Copy(podLabels, cl.Spec.PodTemplate.Labels)
	maps.Copy(podLabels, selectorLabels(cl)) // user labels cannot break the selector
	affinity := cl.Spec.PodTemplate.Affinity
	if affinity == nil {
		// Prefer (not require) distinct nodes: a member per node survives a
		// node loss with one failure, but a small test cluster with fewer
		// nodes than members must still run.
		affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					TopologyKey:   corev1.LabelHostname,
					LabelSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(cl)},
				},
			}},
		}}
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	secretVol := func(name, secret string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret, DefaultMode: ptr.To[int32](0o440),
		}}}
	}
	container := corev1.Container{
		Name:  "member",
		Image: image,
		Args:  []string{"member", "--cluster", cl.Name},
		Env: []corev1.EnvVar{
			fieldEnv(memberpod.EnvPodName, "metadata.name"),
			fieldEnv(memberpod.EnvPodNamespace, "metadata.namespace"),
			fieldEnv(memberpod.EnvPodIP, "status.podIP"),
			// The member renews its Lease every third of this; the operator
			// declares it failed after it.
			{Name: memberpod.EnvLeaseDuration, Value: strconv.Itoa(int(leaseDuration(cl)))},
			{Name: memberpod.EnvTLSDir, Value: mountTLS},
			{Name: memberpod.EnvPeerDir, Value: mountPeer},
			{Name: memberpod.EnvPeerName, Value: peerName(cl)},
			{Name: memberpod.EnvTicketKey, Value: mountTicket + "/" + memberpod.TicketKeyFile},
			{Name: memberpod.EnvMembers, Value: headlessName(cl)},
		},
		Ports: []corev1.ContainerPort{
			{Name: memberpod.PortNameVPN, ContainerPort: portVPN, Protocol: corev1.ProtocolTCP},
			{Name: memberpod.PortNameVPNUDP, ContainerPort: portVPN, Protocol: corev1.ProtocolUDP},
			{Name: memberpod.PortNameMesh, ContainerPort: portMesh, Protocol: corev1.ProtocolTCP},
			// `hubfleet member` serves Prometheus metrics here (docs/metrics.md).
			{Name: memberpod.PortNameMetrics, ContainerPort: portMetrics, Protocol: corev1.ProtocolTCP},
		},
		Resources: cl.Spec.PodTemplate.Resources,
		// Ready means "serves the current placement": an HTTP answer from
		// the process itself, which is not ready while fenced (its Lease
		// could not be renewed, or it is re-reading the placement after an
		// expiry). A TCP check passed for a frozen process, whose kernel
		// still accepts connections. Every second, not ready after two
		// misses: a frozen or fenced member leaves the Service's endpoints
		// (and the operator counts it failed) 2–3 s after it stops, no later
		// than its 3 s Lease expires; one missed probe (a GC pause, a busy
		// node) does not flip it, because a flip moves its dynamic hubs.
		// One local HTTP GET per second per member costs the node nothing
		// and the API server nothing (the kubelet writes only on a change).
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: pathReady, Port: intstr.FromString(memberpod.PortNameMetrics),
			}},
			PeriodSeconds: 1, FailureThreshold: 2, TimeoutSeconds: 1, SuccessThreshold: 1,
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "tls", MountPath: mountTLS, ReadOnly: true},
			{Name: "peer", MountPath: mountPeer, ReadOnly: true},
			{Name: "ticket", MountPath: mountTicket, ReadOnly: true},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	ann := map[string]string{}
	maps.Copy(ann, cl.Spec.PodTemplate.Annotations)
	return &appsv1.StatefulSet{
		ObjectMeta: r.meta(cl, stsName(cl)),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(cl.Spec.Members),
			ServiceName: headlessName(cl),
			Selector:    &metav1.LabelSelector{MatchLabels: selectorLabels(cl)},
			// Members are independent peers: start and replace them all at
			// once instead of waiting on each other in order.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: ann},
				Spec: corev1.PodSpec{
					ServiceAccountName:            memberSAName(cl),
					Containers:                    []corev1.Container{container},
					Affinity:                      affinity,
					NodeSelector:                  cl.Spec.PodTemplate.NodeSelector,
					Tolerations:                   cl.Spec.PodTemplate.Tolerations,
					PriorityClassName:             cl.Spec.PodTemplate.PriorityClassName,
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(memberUID), RunAsGroup: ptr.To(memberUID),
						FSGroup:        ptr.To(memberUID),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Volumes: []corev1.Volume{
						secretVol("tls", servingSecretName(cl)),
						secretVol("peer", peerSecretName(cl)),
						secretVol("ticket", ticketKeySecretName(cl)),
					},
				},
			},
		},
	}
}
