// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"github.com/hubfleet/hubfleet/pkg/bridge"
	"github.com/hubfleet/hubfleet/pkg/hub"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// The member side of the local bridge (docs/bridge.md), a singleton service
// of a static hub (singleton.go): the member bridges the hub it serves to
// spec.localBridge.interface while status.localBridge names it, Bridged is
// True for an activation this process did not find at start, and its Lease
// is fresh.
//
// A local bridge is not a session: it uses no license and is not counted in
// the member's load.

// bridgeSpecs are the local bridges of the cluster's static hubs.
func bridgeSpecs(id *Identity, hubs []*vpnv1alpha1.VirtualHub) []singletonSpec {
	var out []singletonSpec
	for _, h := range hubs {
		if !id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil ||
			h.Spec.Type != vpnv1alpha1.HubStatic || h.Spec.LocalBridge == nil {
			continue
		}
		sp := singletonSpec{hub: HubName(h), conf: h.Spec.LocalBridge.Interface}
		out = append(out, specFromStatus(sp, h, h.Status.LocalBridge, vpnv1alpha1.ConditionBridged))
	}
	return out
}

// newBridges runs local bridges, opening LAN interfaces with open.
// reattach attaches a hub's switch to the mesh again when its bridge moved:
// every member has learned the LAN's MAC addresses behind its mesh port to
// the old holder; if that holder died, frames for the LAN would go to its
// dead link until the mesh declares it dead (seconds) or the LAN host
// happens to send. Attaching again closes this hub's peer ports —
// forgetting what was learned through them — and opens new ones at once,
// so the next frame for the LAN is flooded and reaches the new holder.
func (m *Member) newBridges(open func(iface string) (bridge.Device, error)) *singletons {
	start := func(sw *hub.Hub, sp singletonSpec) (service, error) {
		dev, err := open(sp.conf)
		if err != nil {
			return nil, err
		}
		return &bridgeService{Bridge: bridge.Attach(sw, dev, "local-bridge:"+sp.conf), dev: dev}, nil
	}
	return newSingletons("local bridge", m.id.Name, m.log, m.lease, singletonMargin(m.id.LeaseDuration, m.renewInterval()),
		m.srv.Hub, start, m.meshes.reattach)
}

// bridgeService is a running local bridge and its LAN device.
type bridgeService struct {
	*bridge.Bridge
	dev bridge.Device
}

// Stop closes the bridge (the socket is closed when it returns).
func (b *bridgeService) Stop() []any {
	_ = b.Close()
	st := b.dev.Stats()
	return []any{"rx_frames", st.RxFrames, "tx_frames", st.TxFrames, "segmented", st.Segmented, "dropped", st.Dropped}
}

// Bridging lists the hubs this member bridges now (for tests and status).
func (m *Member) Bridging() []string { return m.bridges.running() }
