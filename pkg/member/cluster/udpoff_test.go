// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// TestUDPDisabledByCluster: with the VPNCluster's spec.udp Disabled, a
// member grants no login the UDP channel — the session runs on TLS — and
// switching it back to Enabled grants it again, without restarting the
// members.
func TestUDPDisabledByCluster(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	setUDP := func(mode vpnv1alpha1.UDPMode) {
		t.Helper()
		vc := &vpnv1alpha1.VPNCluster{}
		if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: "vpn"}, vc); err != nil {
			t.Fatal(err)
		}
		vc.Spec.UDP = mode
		if err := k8s.Update(bg(), vc); err != nil {
			t.Fatal(err)
		}
	}
	m0, _, _ := udpMembersBehindOnePort(t, ns)
	granted := func() (bool, error) {
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		conn, res, err := protocol.Dial(ctx, m0.addr, m0.client, protocol.LoginRequest{Hub: ns + "/dyn", User: "alice", Password: "alice-pw",
			Kind: protocol.KindClient, Capabilities: protocol.CapUDP | protocol.CapGSO})
		if err != nil {
			return false, err
		}
		conn.Close()
		return res.Capabilities&protocol.CapUDP != 0 && res.UDP != nil, nil
	}
	eventually(t, 20*time.Second, "a login with CapUDP granted it", func() error {
		if ok, err := granted(); err != nil || !ok {
			return fmt.Errorf("granted %v, %v", ok, err)
		}
		return nil
	})
	setUDP(vpnv1alpha1.UDPDisabled)
	eventually(t, 10*time.Second, "spec.udp Disabled: the login runs on TLS only", func() error {
		ok, err := granted()
		if err != nil || ok {
			return fmt.Errorf("granted %v, %v", ok, err)
		}
		return nil
	})
	setUDP(vpnv1alpha1.UDPEnabled)
	eventually(t, 10*time.Second, "spec.udp Enabled again: granted", func() error {
		if ok, err := granted(); err != nil || !ok {
			return fmt.Errorf("granted %v, %v", ok, err)
		}
		return nil
	})
}
