// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"net"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// snapshot is everything the loop reads, taken at one instant: the
// informers' objects, the fence and the death certificates. The plan is
// computed from it alone.
type snapshot struct {
	now      time.Time
	hubs     []*vpnv1alpha1.VirtualHub
	licenses []*vpnv1alpha1.ConnectionLicense
	cluster  *vpnv1alpha1.VPNCluster          // nil while not in the cache
	leases   map[string]*coordinationv1.Lease // by Lease name
	// secret looks up a user Secret; synced is false while the namespace's
	// Secret informer has not listed yet.
	secret func(namespace, name string) (s *corev1.Secret, synced bool)
	fenced bool                 // dynamic hubs are not served (fence.go)
	dead   map[string]deathCert // this member's death certificates
}

// planner holds what a plan depends on besides the snapshot: who the member
// is, its file-related configuration and how peers are addressed.
type planner struct {
	id       *Identity
	base     member.Config
	peerAddr func(member, podIP string) string // nil: podIP:MeshPort
	interval time.Duration                     // the Lease renewal interval
}

// plan is the desired state: what each component is handed.
type plan struct {
	config   result          // the server's configuration, Secret namespaces, problems
	fenced   bool            // as in the snapshot
	view     *view           // routes and mesh peers
	static   map[string]bool // static hubs to attach to the mesh
	bridges  []singletonSpec // the cluster's local bridges
	dhcp     []singletonSpec // the cluster's static hubs' DHCP servers
	failover failoverWork    // failed peers to act on now (due empty: none)
	loans    []loanReport    // the peers' license loan reports
	wake     time.Time       // when the plan changes with no event (zero: never)
}

// makePlan computes the desired state from s. Pure: no clock, no client, no
// lock; equal snapshots give equal plans.
func (p *planner) makePlan(s *snapshot) plan {
	in := inputs{hubs: s.hubs, licenses: s.licenses, secret: s.secret, fenced: s.fenced,
		udpOff: s.cluster != nil && s.cluster.Spec.UDP == vpnv1alpha1.UDPDisabled}
	out := plan{fenced: s.fenced, config: desired(p.id, p.base, in)}
	out.static = staticHubs(out.config.cfg)
	out.view = &view{routes: buildRoutes(p.id, s.hubs, s.licenses, s.cluster), peers: p.peers(s.cluster, s.leases)}
	out.bridges = bridgeSpecs(p.id, s.hubs)
	out.dhcp = dhcpSpecs(p.id, s.hubs)
	if s.cluster == nil {
		return out
	}
	ji := judgeInputs{self: p.id.Name, leases: s.leases, dead: s.dead, duration: p.id.LeaseDuration, now: s.now}
	for i := range s.cluster.Spec.Members {
		ji.names = append(ji.names, memberpod.MemberName(p.id.Cluster, int(i)))
	}
	peers, expiry := judgePeers(ji)
	out.loans = loanReports(p.id.Name, peers)
	if !expiry.IsZero() {
		// A little after the expiry, so it has certainly passed when we look.
		out.wake = expiry.Add(20 * time.Millisecond)
	}
	due, next := decideFailover(p.id, peers, s.hubs, p.interval, s.now)
	out.wake = earliest(out.wake, next)
	if !due.empty() && !s.fenced { // a fenced member cannot vouch for its view
		out.failover = failoverWork{vc: s.cluster, peers: peers, hubs: s.hubs, due: due, now: s.now}
	}
	return out
}

// peers are the members listed in the VPNCluster's status with their mesh
// addresses (a member without a pod IP yet is left out until it has one).
// The IP a member's own Lease names wins over the status: it is written by
// the process itself on every renewal, so a member restarted in a new pod is
// dialled at its new address without waiting for the operator (which may be
// down) to report it.
func (p *planner) peers(vc *vpnv1alpha1.VPNCluster, leases map[string]*coordinationv1.Lease) map[string]string {
	peers := map[string]string{}
	if vc == nil {
		return peers
	}
	for _, ms := range vc.Status.Members {
		if ms.Name == p.id.Name {
			continue
		}
		ip := ms.PodIP
		if l := leases[memberlease.LeaseName(ms.Name)]; l != nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == ms.Name {
			if a := l.Annotations[memberpod.AnnotationPodIP]; a != "" {
				ip = a
			}
		}
		if ip == "" {
			continue
		}
		if p.peerAddr != nil {
			peers[ms.Name] = p.peerAddr(ms.Name, ip)
		} else {
			peers[ms.Name] = net.JoinHostPort(ip, MeshPort)
		}
	}
	return peers
}

// staticHubs are the names of cfg's static hubs.
func staticHubs(cfg *member.Config) map[string]bool {
	out := map[string]bool{}
	if cfg != nil {
		for _, h := range cfg.Hubs {
			if h.Type == member.HubStatic {
				out[h.Name] = true
			}
		}
	}
	return out
}

// earliest is the earlier of two instants, zero meaning never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// leaseTriggers reports whether a change of a member Lease from o to n
// matters to the loop at once: a claim or a release (the holder changed),
// not a renewal (one per member per second, which only moves an expiry the
// loop already has a timer for).
func leaseTriggers(o, n *coordinationv1.Lease) bool {
	holder := func(l *coordinationv1.Lease) string {
		if l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	return holder(o) != holder(n) || o.Annotations[memberpod.AnnotationClaim] != n.Annotations[memberpod.AnnotationClaim]
}
