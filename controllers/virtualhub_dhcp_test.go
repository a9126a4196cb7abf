// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/scheme"
)

var testPool = &vpnv1alpha1.DHCPSpec{Prefix: "10.20.0.0/24", RangeStart: "10.20.0.10", RangeEnd: "10.20.0.200", LeaseSeconds: 3600}

func dhcpHub(t *testing.T, ns, name string, cl *vpnv1alpha1.VPNCluster, typ vpnv1alpha1.HubType, lb *vpnv1alpha1.LocalBridgeSpec) {
	t.Helper()
	h := &vpnv1alpha1.VirtualHub{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: vpnv1alpha1.VirtualHubSpec{
			ClusterRef: vpnv1alpha1.ClusterReference{Name: cl.Name, Namespace: cl.Namespace},
			Type:       typ, DHCP: testPool.DeepCopy(), LocalBridge: lb,
		},
	}
	if err := k8s.Create(ctx(), h); err != nil {
		t.Fatal(err)
	}
}

// dhcpOn waits until the hub's DHCP server is on member with the
// DHCPServer condition at status/reason, and returns the hub.
func dhcpOn(t *testing.T, ns, hub, member string, status metav1.ConditionStatus, reason string) *vpnv1alpha1.VirtualHub {
	t.Helper()
	var h *vpnv1alpha1.VirtualHub
	eventually(t, wait, fmt.Sprintf("DHCP server of %s on %q (%s/%s)", hub, member, status, reason), func() error {
		h = get(t, &vpnv1alpha1.VirtualHub{}, ns, hub)
		if h.Status.DHCPServer != member {
			c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionDHCPServer)
			return fmt.Errorf("status.dhcpServer %q (%+v)", h.Status.DHCPServer, c)
		}
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionDHCPServer, status, reason)
	})
	return h
}

// holderHistory records every DHCP holder state the API server holds for a
// hub, as "member/True" or "member/False" (consecutive repeats merged),
// from a watch: a state the operator wrote and replaced at once is seen too.
type holderHistory struct {
	mu     sync.Mutex
	states []string
}

func watchDHCPHolder(t *testing.T, ns, name string) *holderHistory {
	t.Helper()
	wc, err := client.NewWithWatch(restConfig, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx(), &vpnv1alpha1.VirtualHubList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	hist := &holderHistory{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			h, ok := ev.Object.(*vpnv1alpha1.VirtualHub)
			if !ok || h.Name != name || ev.Type == watch.Deleted {
				continue
			}
			s := h.Status.DHCPServer + "/"
			if c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionDHCPServer); c != nil {
				s += string(c.Status)
			}
			hist.mu.Lock()
			if n := len(hist.states); n == 0 || hist.states[n-1] != s {
				hist.states = append(hist.states, s)
			}
			hist.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return hist
}

func (h *holderHistory) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, s := range h.states {
		if s != "/" { // before the first placement
			out = append(out, s)
		}
	}
	return out
}

// A static hub's DHCP server runs on one member, named in status.dhcpServer
// and activated (DHCPServer True) for that member's container. It moves at
// once when that container dies; a holder whose process still runs but is
// not ready is told to stop and keeps the server until its Lease expires,
// and only then does the server move. Never two holders: the watch sees
// exactly the holders the test caused, in order, and each move is an Event
// saying why the old holder certainly stopped.
func TestStaticHubDHCPServerPlacedMovedAndFenced(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	// 12 s leases renewed every 4 s, as in TestBridgePlacedMovedAndFenced:
	// long enough that the release fallback cannot move the server first.
	cl := newCluster(t, ns, "vpn", 3, func(c *vpnv1alpha1.VPNCluster) { c.Spec.Failover.LeaseDurationSeconds = 12 })
	startBridgeMember(t, cl, 0, "", "c0000000000000")
	startBridgeMember(t, cl, 1, "", "a1111111111111")
	startBridgeMember(t, cl, 2, "", "b2222222222222")
	m0, m1, m2 := memberName(cl, 0), memberName(cl, 1), memberName(cl, 2)
	stopOthers := renewer(t, cl, map[string]bool{m0: true, m2: true})
	defer stopOthers()
	stopM1 := renewer(t, cl, map[string]bool{m1: true})
	defer stopM1()
	eventually(t, wait, "members ready", func() error {
		if got := get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn").Status.Ready; got != "3/3" {
			return fmt.Errorf("ready %s", got)
		}
		return nil
	})
	hist := watchDHCPHolder(t, ns, "corp")
	dhcpHub(t, ns, "corp", cl, vpnv1alpha1.HubStatic, nil)

	h := dhcpOn(t, ns, "corp", m0, metav1.ConditionTrue, ReasonDHCPServing)
	if c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionDHCPServer); !strings.Contains(c.Message, "serves DHCP for 10.20.0.0/24 from 10.20.0.10 (container c00000000000)") {
		t.Errorf("DHCPServer message %q does not name the pool and the container", c.Message)
	}
	if h.Status.LocalBridge != "" || meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged) != nil {
		t.Errorf("a hub without a local bridge got one: %q", h.Status.LocalBridge)
	}
	eventually(t, wait, "Placed Event naming the DHCP server", func() error {
		return eventFor(ns, "corp", ReasonPlaced, "DHCP server 10.20.0.10 placed on member "+m0)
	})

	// The serving process dies: the server moves at once.
	setMemberContainer(t, ns, m0, "", false)
	dhcpOn(t, ns, "corp", m1, metav1.ConditionTrue, ReasonDHCPServing)
	eventually(t, wait, "DHCPServerMoved Event", func() error {
		return eventFor(ns, "corp", ReasonDHCPServerMoved, "from "+m0+" to "+m1, "container is not running")
	})
	setMemberContainer(t, ns, m0, "c0999999999999", true) // back; the server stays on m1

	// m1 fails its readiness probe while its process runs, and stops
	// renewing (last renewal 3 s ago: expiry in 9 s, before the 12 s
	// fallback). It is told to stop; nothing moves before the expiry.
	stopM1()
	last := time.Now().Add(-3 * time.Second).Truncate(time.Microsecond)
	renewLease(t, cl, m1, last, "")
	expires := last.Add(12 * time.Second)
	setMemberContainer(t, ns, m1, "a1111111111111", false)
	h = dhcpOn(t, ns, "corp", m1, metav1.ConditionFalse, ReasonDHCPServerReleasing)
	if c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionDHCPServer); !strings.Contains(c.Message, "must stop serving DHCP") || !strings.Contains(c.Message, "its Lease expires") {
		t.Errorf("Releasing message %q does not say what it waits for", c.Message)
	}
	dhcpOn(t, ns, "corp", m0, metav1.ConditionTrue, ReasonDHCPServing)
	if early := time.Until(expires); early > 0 {
		t.Errorf("DHCP server moved %v before the holder's Lease expired", early)
	}
	eventually(t, wait, "DHCPServerMoved Event after the Lease expiry", func() error {
		return eventFor(ns, "corp", ReasonDHCPServerMoved, "from "+m1+" to "+m0, "Lease expired")
	})
	want := []string{m0 + "/True", m1 + "/True", m1 + "/False", m0 + "/True"}
	eventually(t, wait, "holder history", func() error {
		if got := hist.get(); strings.Join(got, " ") != strings.Join(want, " ") {
			return fmt.Errorf("holders seen %v, want %v", got, want)
		}
		return nil
	})
	_ = m2
}

// The DHCP server has a holder of its own: a static hub with a local bridge
// limited to LAN nodes still gets its DHCP server on a member off the LAN;
// removing spec.dhcp removes the holder and its condition; a dynamic hub's
// server runs with the hub and has neither.
func TestStaticHubDHCPServerBesideBridge(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	lan := map[string]string{"lan": ns}
	newNode(t, ns+"-a", nil)
	newNode(t, ns+"-b", lan)
	cl := newCluster(t, ns, "vpn", 2, nil)
	startBridgeMember(t, cl, 0, ns+"-a", "00000000000000")
	startBridgeMember(t, cl, 1, ns+"-b", "11111111111111")
	m0, m1 := memberName(cl, 0), memberName(cl, 1)
	dhcpHub(t, ns, "corp", cl, vpnv1alpha1.HubStatic, &vpnv1alpha1.LocalBridgeSpec{Interface: "eth1", NodeSelector: lan})
	dhcpHub(t, ns, "dyn", cl, vpnv1alpha1.HubDynamic, nil)

	dhcpOn(t, ns, "corp", m0, metav1.ConditionTrue, ReasonDHCPServing)
	bridgedOn(t, ns, "corp", m1, metav1.ConditionTrue, ReasonBridged)

	d := placedHub(t, ns, "dyn")
	if d.Status.DHCPServer != "" || meta.FindStatusCondition(d.Status.Conditions, vpnv1alpha1.ConditionDHCPServer) != nil {
		t.Errorf("a dynamic hub got a DHCP holder %q: its server runs with the hub", d.Status.DHCPServer)
	}

	h := get(t, &vpnv1alpha1.VirtualHub{}, ns, "corp")
	patch := client.MergeFrom(h.DeepCopy())
	h.Spec.DHCP = nil
	if err := k8s.Patch(context.Background(), h, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "DHCP holder gone with spec.dhcp", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, ns, "corp")
		if h.Status.DHCPServer != "" || meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionDHCPServer) != nil {
			return fmt.Errorf("dhcpServer %q, conditions %+v", h.Status.DHCPServer, h.Status.Conditions)
		}
		if h.Status.LocalBridge != m1 {
			return fmt.Errorf("the bridge moved: %q", h.Status.LocalBridge)
		}
		return nil
	})
}
