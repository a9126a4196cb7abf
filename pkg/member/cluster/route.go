// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/placement"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// view is where logins go, as the loop last computed it: the route table
// and the mesh peers. The loop publishes a new one each pass and never
// changes a published one, so readers (every login) take no lock.
type view struct {
	routes routeTable
	peers  map[string]string // mesh peers: member name -> address
}

// routeTable is the entry member's view of where sessions go, rebuilt by
// recompute from the informers (so it is the last known placement, and keeps
// routing with the operator stopped).
type routeTable struct {
	// dynamic maps a dynamic hub to status.assignedMember.
	dynamic map[string]string
	// static maps a static hub to the members holding an instance
	// (status.instances).
	static map[string][]string
	// members are the cluster's members as the operator last reported them
	// (VPNCluster status.members: readiness, weight, sessions).
	members map[string]placement.Member
	// known are all the cluster's hubs that are not being deleted.
	known map[string]bool
	// free is each member's licenses left by kind (allocation − in use from
	// the ConnectionLicense status); nil when the cluster has no license.
	free map[string][sessionkind.N]int
}

// buildRoutes computes the route table of member id from the hubs, licenses
// and VPNCluster (nil when not in the cache yet) of its cluster.
func buildRoutes(id *Identity, hubs []*vpnv1alpha1.VirtualHub, lics []*vpnv1alpha1.ConnectionLicense, vc *vpnv1alpha1.VPNCluster) routeTable {
	rt := routeTable{dynamic: map[string]string{}, static: map[string][]string{}, members: map[string]placement.Member{}, known: map[string]bool{}}
	for _, h := range hubs {
		if !id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil {
			continue
		}
		rt.known[HubName(h)] = true
		if h.Spec.Type == vpnv1alpha1.HubStatic {
			var in []string
			for _, i := range h.Status.Instances {
				in = append(in, i.Member)
			}
			rt.static[HubName(h)] = in
		} else if h.Status.AssignedMember != "" {
			rt.dynamic[HubName(h)] = h.Status.AssignedMember
		}
	}
	if vc != nil {
		for _, ms := range vc.Status.Members {
			rt.members[ms.Name] = placement.Member{
				Name: ms.Name, Ready: ms.Ready, Weight: int(ms.Weight),
				Sessions: int(ms.Sessions), MaxSessions: int(vc.Spec.MaxSessionsPerMember),
			}
		}
	}
	for _, l := range lics {
		if !id.ours(l.Spec.ClusterRef, l.Namespace) || l.DeletionTimestamp != nil {
			continue
		}
		if rt.free == nil {
			rt.free = map[string][sessionkind.N]int{}
		}
		// Every license of a cluster carries the same allocations; the first
		// one that has them is the cluster's.
		if len(rt.free) > 0 {
			continue
		}
		for _, a := range l.Status.Allocations {
			var f [sessionkind.N]int
			f[sessionkind.Client], f[sessionkind.Bridge] = max(int(a.Client-a.ClientInUse), 0), max(int(a.Bridge-a.BridgeInUse), 0)
			rt.free[a.Member] = f
		}
	}
	return rt
}

// staticTarget chooses the member for a login to static hub hub that this
// member (self) reached: the best point among the hub's instances on mesh
// peers and on self, self unless it is full, out of licenses or clearly
// busier (placement.SessionMember). own are self's live license figures,
// fresher than the status the operator wrote. It returns "" for self.
func (rt *routeTable) staticTarget(self, hub string, kind sessionkind.Kind, own member.LicenseStats, peers map[string]string) string {
	holders, ok := rt.static[hub]
	if _, known := rt.members[self]; !ok || !known {
		// Not listed yet (a member that just started): serve it here.
		return ""
	}
	cands := make([]placement.SessionCandidate, 0, len(holders))
	for _, name := range holders {
		ms, known := rt.members[name]
		if !known {
			continue
		}
		_, peer := peers[name]
		if name != self && !peer {
			continue
		}
		c := placement.SessionCandidate{Member: ms, Free: -1}
		if name == self {
			// The live figures: what this member holds right now.
			c.Ready = true
			c.Sessions = own.ClientInUse + own.BridgeInUse
			alloc, inUse := own.ClientAllocation, own.ClientInUse
			if kind == sessionkind.Bridge {
				alloc, inUse = own.BridgeAllocation, own.BridgeInUse
			}
			if alloc >= 0 {
				c.Free = max(alloc-inUse, 0)
			}
		} else if rt.free != nil {
			c.Free = rt.free[name][kind] // a member without an allocation has none
		}
		cands = append(cands, c)
	}
	target, ok := placement.SessionMember(self, cands, placement.StayMargin)
	if !ok || target == self {
		return ""
	}
	return target
}
