// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/testenv"
)

// newNode creates a node with labels; nodes are cluster-wide, so tests name
// them after their namespace.
func newNode(t *testing.T, name string, lbls map[string]string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
	if err := k8s.Create(ctx(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx(), n) })
}

// startBridgeMember is startMember with a node and a running member
// container whose ID is container.
func startBridgeMember(t *testing.T, cl *vpnv1alpha1.VPNCluster, i int, node, container string) {
	t.Helper()
	name := memberName(cl, i)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: name, Labels: selectorLabels(cl)},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			Containers:                   []corev1.Container{{Name: "member", Image: "hubfleet:test"}},
			AutomountServiceAccountToken: ptr.To(false),
		},
	}
	if err := k8s.Create(ctx(), pod); err != nil {
		t.Fatal(err)
	}
	setMemberContainer(t, cl.Namespace, name, container, true)
	renewLease(t, cl, name, time.Now(), "")
}

// setMemberContainer sets the pod's member container: running with ID
// container ("" for terminated) and the pod Ready or not — what the kubelet
// reports after a process dies, restarts, or fails its readiness probe.
func setMemberContainer(t *testing.T, ns, name, container string, ready bool) {
	t.Helper()
	eventually(t, wait, "pod status of "+name, func() error {
		pod := &corev1.Pod{}
		if err := k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
			return err
		}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		cs := corev1.ContainerStatus{Name: "member", Image: "hubfleet:test", ImageID: "hubfleet:test", Ready: ready}
		if container != "" {
			cs.ContainerID = "containerd://" + container
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
		} else {
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error", FinishedAt: metav1.Now()}
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP = "10.0.0.1"
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
		return k8s.Status().Update(ctx(), pod)
	})
}

func bridgeHub(t *testing.T, ns, name string, cl *vpnv1alpha1.VPNCluster, sel map[string]string) {
	t.Helper()
	h := &vpnv1alpha1.VirtualHub{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: vpnv1alpha1.VirtualHubSpec{
			ClusterRef:  vpnv1alpha1.ClusterReference{Name: cl.Name, Namespace: cl.Namespace},
			Type:        vpnv1alpha1.HubStatic,
			LocalBridge: &vpnv1alpha1.LocalBridgeSpec{Interface: "eth1", NodeSelector: sel},
		},
	}
	if err := k8s.Create(ctx(), h); err != nil {
		t.Fatal(err)
	}
}

// bridgedOn waits until the hub's bridge is on member with Bridged at
// status/reason, and returns the hub.
func bridgedOn(t *testing.T, ns, hub, member string, status metav1.ConditionStatus, reason string) *vpnv1alpha1.VirtualHub {
	t.Helper()
	var h *vpnv1alpha1.VirtualHub
	eventually(t, wait, fmt.Sprintf("bridge of %s on %q (%s/%s)", hub, member, status, reason), func() error {
		h = get(t, &vpnv1alpha1.VirtualHub{}, ns, hub)
		if h.Status.LocalBridge != member {
			c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged)
			return fmt.Errorf("status.localBridge %q (%+v)", h.Status.LocalBridge, c)
		}
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionBridged, status, reason)
	})
	return h
}

// The bridge goes to a ready member on a matching node, moves at once when
// that member's container dies, is released (not moved) while a member whose
// process still runs is merely not ready, and moves once that member's Lease
// expires. Each move is an Event.
func TestBridgePlacedMovedAndFenced(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	lan := map[string]string{"lan": ns}
	newNode(t, ns+"-a", lan)
	newNode(t, ns+"-b", lan)
	newNode(t, ns+"-c", nil)
	// A real Lease expiry at the end: 12 s leases, renewed every 4 s like
	// `hubfleet member` does (long enough that the release fallback of one
	// lease duration cannot move the bridge before the test looks).
	cl := newCluster(t, ns, "vpn", 3, func(c *vpnv1alpha1.VPNCluster) { c.Spec.Failover.LeaseDurationSeconds = 12 })
	startBridgeMember(t, cl, 0, ns+"-c", "c0000000000000")
	startBridgeMember(t, cl, 1, ns+"-a", "a1111111111111")
	startBridgeMember(t, cl, 2, ns+"-b", "b2222222222222")
	m0, m1, m2 := memberName(cl, 0), memberName(cl, 1), memberName(cl, 2)
	stopOthers := renewer(t, cl, map[string]bool{m0: true, m1: true})
	defer stopOthers()
	stopM2 := renewer(t, cl, map[string]bool{m2: true})
	defer stopM2()
	eventually(t, wait, "members ready", func() error {
		if got := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn").Status.Ready; got != "3/3" {
			return fmt.Errorf("ready %s", got)
		}
		return nil
	})
	bridgeHub(t, ns, "lan", cl, lan)

	h := bridgedOn(t, ns, "lan", m1, metav1.ConditionTrue, ReasonBridged)
	if c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged); !strings.Contains(c.Message, "interface eth1 (container a11111111111)") {
		t.Errorf("Bridged message %q does not name the interface and the container", c.Message)
	}
	// Members moving the bridge without the operator choose among these:
	// the members on nodes matching the selector, not m0.
	if got := h.Status.LocalBridgeEligible; !slices.Equal(got, []string{m1, m2}) {
		t.Errorf("localBridgeEligible %v, want [%s %s]", got, m1, m2)
	}
	// The first placement's Event is the hub's Placed Event, which names the bridge.
	eventually(t, wait, "Placed Event naming the bridge", func() error {
		return eventFor(ns, "lan", ReasonPlaced, "bridge to interface eth1 placed on member "+m1)
	})

	// The bridging process dies: the kubelet reports the container
	// terminated. It cannot bridge any more; the bridge moves at once,
	// never to m0 (its node does not match).
	setMemberContainer(t, ns, m1, "", false)
	bridgedOn(t, ns, "lan", m2, metav1.ConditionTrue, ReasonBridged)
	eventually(t, wait, "BridgeMoved Event", func() error {
		return eventFor(ns, "lan", ReasonBridgeMoved, "from "+m1+" to "+m2, "container is not running")
	})

	// m1 comes back with a new container; the bridge stays on m2 (sticky).
	setMemberContainer(t, ns, m1, "a99911111111", true)

	// m2 fails its readiness probe but its process runs: it may still be
	// bridging, so it is told to stop and nothing moves. It has also stopped
	// renewing, its last renewal 3 s ago: its Lease expires in 9 s, before
	// the fallback of one lease duration (12 s) after it was told to stop.
	stopM2()
	// The expiry is counted from the renewTime written (as the operator
	// counts it, truncated to the microsecond a MicroTime keeps), not from
	// after the write returned: the write itself takes milliseconds.
	last := time.Now().Add(-3 * time.Second).Truncate(time.Microsecond)
	renewLease(t, cl, m2, last, "")
	expires := last.Add(12 * time.Second)
	setMemberContainer(t, ns, m2, "b2222222222222", false)
	h = bridgedOn(t, ns, "lan", m2, metav1.ConditionFalse, ReasonBridgeReleasing)
	if c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged); !strings.Contains(c.Message, "its Lease expires") {
		t.Errorf("Releasing message %q does not say what it waits for", c.Message)
	}
	// Only m2 ever bridged since the move: the condition history shows no
	// other holder (the status went m2/True -> m2/False).
	if h.Status.LocalBridge != m2 {
		t.Fatalf("bridge left m2 while its process may run: %q", h.Status.LocalBridge)
	}

	// Its Lease expires (the member fenced itself): now the bridge moves.
	// Not sooner: the operator waits for the expiry, which it learns from
	// the clock (a renewal that stops writes nothing to watch).
	bridgedOn(t, ns, "lan", m1, metav1.ConditionTrue, ReasonBridged)
	if early := time.Until(expires); early > 0 {
		t.Errorf("bridge moved %v before m2's Lease expired", early)
	}
	eventually(t, wait, "BridgeMoved Event after the Lease expiry", func() error {
		return eventFor(ns, "lan", ReasonBridgeMoved, "from "+m2+" to "+m1, "Lease expired")
	})
	_ = m0
}

// A holder whose container restarted and is ready again before the operator
// noticed keeps the bridge, activated for its new container (the message is
// the activation token the member compares).
func TestBridgeReactivatedForNewProcess(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 1, nil)
	startBridgeMember(t, cl, 0, "", "aaaa00000000")
	m0 := memberName(cl, 0)
	bridgeHub(t, ns, "lan", cl, nil)
	bridgedOn(t, ns, "lan", m0, metav1.ConditionTrue, ReasonBridged)

	setMemberContainer(t, ns, m0, "bbbb00000000", true)
	eventually(t, wait, "activation for the new container", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, ns, "lan")
		c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged)
		if c == nil || !strings.Contains(c.Message, "(container bbbb00000000)") {
			return fmt.Errorf("Bridged %+v", c)
		}
		return nil
	})
	eventually(t, wait, "BridgeRestarted Event", func() error { return eventFor(ns, "lan", ReasonBridgeRestarted, m0) })
}

// With no ready member on a matching node, Bridged is False and says which
// selector matched nothing and why each member is out.
func TestBridgeNoEligibleMember(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	newNode(t, ns+"-a", nil)
	cl := newCluster(t, ns, "vpn", 1, nil)
	startBridgeMember(t, cl, 0, ns+"-a", "0000000000000a")
	bridgeHub(t, ns, "lan", cl, map[string]string{"lan": "nowhere"})
	h := bridgedOn(t, ns, "lan", "", metav1.ConditionFalse, ReasonNoEligibleMember)
	c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged)
	if want := "no ready member on a node matching nodeSelector {lan=nowhere}"; !strings.Contains(c.Message, want) {
		t.Errorf("message %q, want it to contain %q", c.Message, want)
	}
	if err := condIs(h.Status.Conditions, vpnv1alpha1.ConditionReady, metav1.ConditionTrue, ""); err != nil {
		t.Errorf("the hub itself is still ready: %v", err)
	}
	eventually(t, wait, "NoEligibleMember Event", func() error { return eventFor(ns, "lan", ReasonNoEligibleMember, "lan=nowhere") })
}

// Member pods get root and NET_RAW only while the cluster has a hub with a
// local bridge; without one they stay non-root with every capability dropped.
func TestBridgePrivilegesOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 1, nil)
	newHub(t, ns, "plain", cl, vpnv1alpha1.HubStatic)
	privileged := func(want bool) func() error {
		return func() error {
			sts := &appsv1.StatefulSet{}
			if err := k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "vpn-member"}, sts); err != nil {
				return err
			}
			pod := sts.Spec.Template.Spec
			caps := pod.Containers[0].SecurityContext.Capabilities
			root := pod.SecurityContext.RunAsUser != nil && *pod.SecurityContext.RunAsUser == 0
			got := root || len(caps.Add) > 0
			if got != want {
				return fmt.Errorf("runAsUser %v, capabilities %+v; want privileged=%v", ptr.Deref(pod.SecurityContext.RunAsUser, -1), caps, want)
			}
			if !slices.Equal(caps.Drop, []corev1.Capability{"ALL"}) {
				return fmt.Errorf("capabilities drop %v, want ALL", caps.Drop)
			}
			if want && (!slices.Equal(caps.Add, []corev1.Capability{"NET_RAW"}) || *pod.SecurityContext.RunAsNonRoot) {
				return fmt.Errorf("bridge members: add %v runAsNonRoot %v; want exactly NET_RAW as root", caps.Add, *pod.SecurityContext.RunAsNonRoot)
			}
			if !want && (!*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.RunAsUser != memberUID) {
				return fmt.Errorf("members without a bridge must run as %d, non-root", memberUID)
			}
			return nil
		}
	}
	eventually(t, wait, "unprivileged members without a bridge", privileged(false))
	bridgeHub(t, ns, "lan", cl, nil)
	eventually(t, wait, "NET_RAW once a hub has a local bridge", privileged(true))
	if err := k8s.Delete(ctx(), &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lan"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "unprivileged again once the bridge hub is gone", privileged(false))
}

// The remote-access sample is accepted by the API server (CRD schema and CEL),
// its hub gets its bridge on a member of a matching node, and its members the
// bridge privileges.
func TestRemoteAccessSample(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "remote-access", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("remote-access sample files: %v %v", files, err)
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := testenv.DecodeObjects(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			o.SetNamespace(ns)
			if err := k8s.Create(ctx(), o); err != nil {
				t.Fatalf("%s: %s %s refused: %v", filepath.Base(f), o.GetKind(), o.GetName(), err)
			}
		}
	}
	cl := get(t, &vpnv1alpha1.VPNCluster{}, ns, "remote")
	newNode(t, ns+"-lan", map[string]string{"hubfleet.io/lan": "corp"})
	startBridgeMember(t, cl, 0, ns+"-lan", "f00000000001")
	bridgedOn(t, ns, "corp", memberName(cl, 0), metav1.ConditionTrue, ReasonBridged)
	eventually(t, wait, "NET_RAW for the sample's members", func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "remote-member"}, sts); err != nil {
			return err
		}
		if caps := sts.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities; !slices.Equal(caps.Add, []corev1.Capability{"NET_RAW"}) {
			return fmt.Errorf("capabilities %+v", caps)
		}
		return nil
	})
}
