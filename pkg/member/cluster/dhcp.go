// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"errors"
	"fmt"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/member"
)

// A static hub's DHCP server (docs/user-guide.md, "Addresses from the hub")
// is a singleton service (singleton.go): every member holds an instance of
// the hub, and a server on each would lease from its own table, so exactly
// one runs, on the member status.dhcpServer names while DHCPServer is True,
// fenced a margin before that member's Lease expires. The hub's
// configuration on every member has no dhcp; the holder attaches the server
// to its instance's switch (member.Server.HoldDHCP), and the segment — one
// across the members through the mesh — carries every client's DHCP to it.
//
// Leases are not stored: a moved server starts with an empty table and
// learns each lease back from the client's renewal after an ARP probe finds
// no other host on the address (pkg/dhcp), as a dynamic hub's does. Its MAC
// and address are the same on every member (derived from the hub's name),
// and it announces itself when it starts, so the other members' switches
// learn its new place at once.
//
// A dynamic hub's server needs none of this: it lives with the hub's one
// instance (config.go puts spec.dhcp in the hub's configuration).

// dhcpSpecs are the DHCP servers of the cluster's static hubs; a pool the
// member cannot use (written past the CRD's checks) is left out, and
// config.go reports it.
func dhcpSpecs(id *Identity, hubs []*vpnv1alpha1.VirtualHub) []singletonSpec {
	var out []singletonSpec
	for _, h := range hubs {
		d := h.Spec.DHCP
		if !id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil ||
			h.Spec.Type != vpnv1alpha1.HubStatic || d == nil {
			continue
		}
		if _, err := member.DHCPSettings(d).Config(); err != nil {
			continue
		}
		sp := singletonSpec{hub: HubName(h), conf: poolString(d), arg: d}
		out = append(out, specFromStatus(sp, h, h.Status.DHCPServer, vpnv1alpha1.ConditionDHCPServer))
	}
	return out
}

// poolString is the pool as one comparable string: a change restarts the
// server (its table starts empty; renewals refill it).
func poolString(d *vpnv1alpha1.DHCPSpec) string {
	return fmt.Sprintf("%s %s-%s router=%s dns=%v lease=%ds", d.Prefix, d.RangeStart, d.RangeEnd, d.Router, d.DNSServers, d.LeaseSeconds)
}

// newDHCPServers runs static hubs' DHCP servers on this member's instances.
func (m *Member) newDHCPServers() *singletons {
	start := func(sw *hub.Hub, sp singletonSpec) (service, error) {
		// The pool's use goes into the hub's status with this member's
		// session report (sessions.go): the server reports its start, its
		// stop and each DHCP exchange as a change of the hub's sessions.
		h, err := m.srv.HoldDHCP(sp.hub, sw, sp.arg.(*vpnv1alpha1.DHCPSpec))
		if err != nil {
			return nil, err
		}
		return dhcpService{h: h}, nil
	}
	// No reattach: the server's announcement teaches every switch its place.
	return newSingletons("dhcp server", m.id.Name, m.log, m.lease, singletonMargin(m.id.LeaseDuration, m.renewInterval()),
		m.srv.Hub, start, nil)
}

type dhcpService struct{ h *member.DHCPHold }

func (d dhcpService) Done() <-chan struct{} { return d.h.Done() }
func (d dhcpService) Err() error            { return errors.New("the hub's switch closed") }
func (d dhcpService) Stop() []any {
	st := d.h.Stats()
	d.h.Stop()
	return []any{"leases", st.InUse, "pool", st.PoolSize, "offers", st.Offers, "acks", st.Acks, "learned", st.Learned}
}

// ServingDHCP lists the static hubs whose DHCP server runs on this member
// now (for tests and status).
func (m *Member) ServingDHCP() []string { return m.dhcp.running() }
