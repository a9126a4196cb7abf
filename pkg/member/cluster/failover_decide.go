// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"net"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// What the failover worker (failover.go) decides, as pure functions of what
// the loop read: which peers are dead and certified so, and which hubs and
// singleton services this member must move off them now. No client here:
// failover.go claims the Leases and writes the moves.

// peerState is one member as this member judges it.
type peerState struct {
	name   string
	live   bool // Lease current and held by the member itself
	failed bool
	reason string
	msg    string
	since  time.Time // when the failure became evident
	claim  *memberlease.Claim
	lease  *coordinationv1.Lease
	load   memberlease.Load
}

// judgeInputs is everything judgePeers reads: pure, so it is tested alone.
type judgeInputs struct {
	self     string
	names    []string // the cluster's members, by index
	leases   map[string]*coordinationv1.Lease
	dead     map[string]deathCert
	duration time.Duration
	now      time.Time
}

// judgePeers classifies every member and returns when the next verdict can
// change (the earliest expiry of a live peer's Lease; zero if none).
func judgePeers(in judgeInputs) ([]peerState, time.Time) {
	var next time.Time
	out := make([]peerState, 0, len(in.names))
	for _, name := range in.names {
		p := peerState{name: name, lease: in.leases[memberlease.LeaseName(name)]}
		if name == in.self {
			p.live = true
			out = append(out, p)
			continue
		}
		if p.lease == nil || p.lease.Spec.RenewTime == nil {
			out = append(out, p) // never started: neither live nor failed
			continue
		}
		if l, err := memberlease.Decode(p.lease.Annotations[memberpod.AnnotationLoad]); err == nil {
			p.load = l
		}
		renew := p.lease.Spec.RenewTime.Time
		expiry := memberlease.Expiry(renew, in.duration)
		cert, certified := in.dead[name]
		if c, ok := memberlease.Claimed(name, p.lease.Spec.HolderIdentity, p.lease.Annotations); ok {
			p.failed, p.claim, p.reason, p.msg, p.since = true, &c, c.Reason, c.Message, c.Time
		} else if !in.now.Before(expiry) {
			p.failed, p.reason, p.since = true, ReasonLeaseExpired, expiry
			p.msg = fmt.Sprintf("Lease not renewed since %s", renew.UTC().Format(time.RFC3339))
		} else if certified && in.now.Sub(cert.at) < certTTL && sameProcess(cert, p.lease) {
			p.failed, p.reason, p.msg, p.since = true, ReasonMemberDead, cert.msg, cert.at
		} else {
			p.live = true
			if next.IsZero() || expiry.Before(next) {
				next = expiry
			}
		}
		out = append(out, p)
	}
	return out, next
}

// failoverDue is what decideFailover finds due now: the failed peers whose
// dynamic hubs, and those whose singleton services (local bridges, static
// hubs' DHCP servers), this member moves.
type failoverDue struct {
	hubs, singletons []string
}

func (d failoverDue) empty() bool { return len(d.hubs) == 0 && len(d.singletons) == 0 }

// bridgeGrace is how long a failed peer's local bridge is left to the
// operator before a member moves it. The operator places bridges with what
// members cannot see (node labels, pod readiness) and moves a dead holder's
// bridge within a few hundred milliseconds, so with it alive the members
// never act; with it down the LAN is back about a second later than that,
// inside the bridge's 3 s target. A static hub's DHCP server waits as long:
// clients renew long before their leases end. Dynamic hubs have no grace: a
// client's every session waits on them.
const bridgeGrace = time.Second

// decideFailover chooses, from the judged peers, the failed ones this
// member acts on now, and returns when the next one becomes due (zero if
// none). interval is the renewal interval.
//
// The first live member by name acts at once; the k-th only k intervals
// later if the hubs are still there (the first may be cut off from the API
// server). A member holding its own death certificate acts at once, since
// not every peer gets one (a link may be down, a probe inconclusive); the
// claim still lets only one win. A peer claimed by another member is left
// to it for two more intervals. Singletons wait bridgeGrace at least.
func decideFailover(id *Identity, peers []peerState, hubs []*vpnv1alpha1.VirtualHub, interval time.Duration, now time.Time) (due failoverDue, next time.Time) {
	var live []string
	for _, p := range peers {
		if p.live {
			live = append(live, p.name)
		}
	}
	slices.Sort(live)
	rank := slices.Index(live, id.Name)
	at := func(t time.Time) bool {
		if now.Before(t) {
			if next.IsZero() || t.Before(next) {
				next = t
			}
			return false
		}
		return true
	}
	for _, p := range peers {
		if !p.failed {
			continue
		}
		delay := time.Duration(rank) * interval
		if p.claim == nil && p.reason == ReasonMemberDead {
			delay = 0
		}
		if p.claim != nil && p.claim.By != id.Name {
			delay += 2 * interval
		}
		if holdsDynamic(id, hubs, p.name) && at(p.since.Add(delay)) {
			due.hubs = append(due.hubs, p.name)
		}
		if holdsSingleton(id, hubs, p.name) && at(p.since.Add(max(delay, bridgeGrace))) {
			due.singletons = append(due.singletons, p.name)
		}
	}
	return due, next
}

// clockSkew is how far apart two members' clocks may be: it separates
// another member's Lease renewTime from an instant on this member's clock
// (a renewal after a death certificate, a loan report after a lend).
const clockSkew = time.Second

// sameProcess: the certificate is about the process that renews the Lease.
// A process that renewed well after the certificate is a new one — its
// container restarted (same IP) and it came back — and a member restarted
// in a new pod has a new IP: until the operator reports it, peers still
// dial (and find dead) the old one. Neither death says anything about the
// process now renewing.
func sameProcess(c deathCert, l *coordinationv1.Lease) bool {
	if l.Spec.RenewTime != nil && l.Spec.RenewTime.After(c.at.Add(clockSkew)) {
		return false
	}
	ip := l.Annotations[memberpod.AnnotationPodIP]
	if ip == "" || c.addr == "" {
		return true // a member that does not say where it is
	}
	host, _, err := net.SplitHostPort(c.addr)
	return err != nil || host == ip
}

// holdsDynamic reports whether member holds a dynamic hub of this cluster.
func holdsDynamic(id *Identity, hubs []*vpnv1alpha1.VirtualHub, member string) bool {
	for _, h := range hubs {
		if h.Spec.Type != vpnv1alpha1.HubStatic && h.Status.AssignedMember == member &&
			id.ours(h.Spec.ClusterRef, h.Namespace) && h.DeletionTimestamp == nil {
			return true
		}
	}
	return false
}
