// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// TestPeerMovesDeadMembersBridge: the member bridging a static hub to its
// LAN dies; with no operator running, the surviving member moves the bridge
// to itself and opens the LAN interface. A hub with no dynamic hub on the
// dead member still gets its failover.
func TestPeerMovesDeadMembersBridge(t *testing.T) {
	ns, iface, m0, m1 := bridgedOnMember1(t)

	died := time.Now()
	m1.stop()
	waitLAN(t, iface, 1, 2) // m1's device closed, m0's opened
	t.Logf("bridge reopened on the survivor %v after the holder died", time.Since(died).Round(time.Millisecond))
	st := hubStatus(t, ns, "lan")
	c := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionBridged)
	if st.LocalBridge != "vpn-member-0" || c == nil || c.Status != metav1.ConditionTrue ||
		!strings.Contains(c.Message, "moved from vpn-member-1 by member vpn-member-0") || !strings.Contains(c.Message, "(container unknown)") {
		t.Fatalf("status after the move: localBridge %q, Bridged %+v", st.LocalBridge, c)
	}
	if got := m0.m.Bridging(); len(got) != 1 || got[0] != ns+"/lan" {
		t.Fatalf("m0 bridges %v", got)
	}
}

// bridgeTarget: the first live member in member order;
// with a nodeSelector only among the members the operator found eligible.
func TestBridgeTarget(t *testing.T) {
	h := planHub("lan", vpnv1alpha1.HubStatic)
	h.Spec.LocalBridge = &vpnv1alpha1.LocalBridgeSpec{Interface: "eth1"}
	// m-1 is not listed among the instances yet (it restarted): its Lease
	// is fresh, so it counts.
	h.Status.Instances = []vpnv1alpha1.HubInstance{{Member: "m-0", Ready: true}, {Member: "m-2", Ready: false}, {Member: "m-3", Ready: true}}
	peers := []peerState{{name: "m-0", failed: true}, {name: "m-1", live: true}, {name: "m-2", live: true}, {name: "m-3", live: true}}
	for _, tc := range []struct {
		selector map[string]string
		eligible []string
		want     string
	}{
		{nil, nil, "m-1"},
		{map[string]string{"lan": "a"}, []string{"m-3"}, "m-3"},
		{map[string]string{"lan": "a"}, []string{"m-0", "m-3"}, "m-3"},
		{map[string]string{"lan": "a"}, []string{"m-0"}, ""},
		{map[string]string{"lan": "a"}, nil, ""},
	} {
		h.Spec.LocalBridge.NodeSelector, h.Status.LocalBridgeEligible = tc.selector, tc.eligible
		if got := bridgeTarget(h, peers); got != tc.want {
			t.Errorf("%s: bridge goes to %q, want %q", fmt.Sprint(tc.selector, tc.eligible), got, tc.want)
		}
	}
}
