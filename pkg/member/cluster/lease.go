// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"fmt"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// MinRenewInterval keeps the renewal, the member's only periodic API write,
// within the budget of one write per member per second even with the
// shortest lease the API allows (2 s: renewing every second still leaves one
// renewal that may fail before the Lease expires).
const MinRenewInterval = time.Second

// renewInterval is how often the Lease is renewed.
func (m *Member) renewInterval() time.Duration {
	return max(memberlease.RenewInterval(m.id.LeaseDuration), MinRenewInterval)
}

// renewLoop renews the Lease every renewInterval until ctx ends. Each attempt
// is bounded by the interval so a hung request cannot delay the next one; the
// fence does not depend on this loop running (see Member.loop).
func (m *Member) renewLoop(ctx context.Context) {
	interval := m.renewInterval()
	var cur *coordinationv1.Lease // the Lease as our last write returned it
	var waiters []chan struct{}   // flushLoad callers this renewal answers
	failing := false
	for {
		for drained := false; !drained; {
			select {
			case w := <-m.flushes:
				waiters = append(waiters, w)
			default:
				drained = true
			}
		}
		// Borrowed licenses this member no longer needs are dropped before
		// the report and given back after it is written, so the report
		// shows them gone before their lender can admit on them again: the
		// Lease loads never add up to more than the license (loans.go).
		back := m.loans.takeSurplus()
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, interval)
		next, err := m.renewOnce(rctx, cur, start)
		cancel()
		m.loans.giveBack(ctx, back)
		for _, w := range waiters {
			close(w)
		}
		waiters = waiters[:0]
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Re-read before the next attempt: a conflict or a deleted Lease
			// means our copy is stale.
			cur = nil
			if !failing {
				m.log.Warn("cannot renew the member Lease; dynamic hubs stop being served if this lasts the lease duration", "err", err, "lease_duration", m.id.LeaseDuration)
			}
			failing = true
		} else {
			cur = next
			if l, err := memberlease.Decode(next.Annotations[memberpod.AnnotationLoad]); err == nil {
				m.reported.Store(&l)
			}
			if failing {
				m.log.Info("member Lease renewed again")
			}
			failing = false
			// The fence counts from when the renewal was sent, not answered:
			// renewTime carries that instant, and the operator counts from it.
			m.lease.renewed(start)
			select {
			case m.renewed <- struct{}{}:
			default:
			}
		}
		t := time.NewTimer(time.Until(start.Add(interval)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case w := <-m.flushes:
			t.Stop()
			waiters = append(waiters, w)
		}
	}
}

// flushLoad makes the member's Lease report its current sessions of kind k
// before it returns (or ctx ends), if the last report shows more than it
// has: a lender calls it before lending, so the license it lends is not
// also counted by the session that freed it (the operator's and the
// administrator's sum of the loads would otherwise read more sessions than
// the license for up to a renewal interval).
func (m *Member) flushLoad(ctx context.Context, k sessionkind.Kind) {
	rep := m.reported.Load()
	if rep == nil {
		return
	}
	c, b := rep.Totals()
	now := m.srv.Licenses()
	if (k == sessionkind.Client && int(c) <= now.ClientInUse) || (k == sessionkind.Bridge && int(b) <= now.BridgeInUse) {
		return
	}
	done := make(chan struct{})
	select {
	case m.flushes <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// renewOnce makes exactly one write: an update of cur, or, without a current
// copy, a read and then an update or a create. The load is the member's
// sessions per hub and kind, from which the operator also counts licenses in use.
func (m *Member) renewOnce(ctx context.Context, cur *coordinationv1.Lease, start time.Time) (*coordinationv1.Lease, error) {
	leases := m.cs.CoordinationV1().Leases(m.id.Namespace)
	name := memberlease.LeaseName(m.id.Name)
	if cur == nil {
		got, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			l := m.leaseFor(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.id.Namespace}}, start)
			l.Spec.AcquireTime = l.Spec.RenewTime
			// No owner reference to the pod: garbage collection would delete the
			// evidence of a failure the operator acts on (docs/design-operator.md).
			// The VPNCluster owns it instead: a member still terminating when the
			// cluster's finalizer deleted the Leases creates its own again, and
			// the garbage collector removes that one once the cluster is gone.
			created, err := leases.Create(ctx, l, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("creating Lease %s/%s: %w", m.id.Namespace, name, err)
			}
			return created, nil
		case err != nil:
			return nil, fmt.Errorf("reading Lease %s/%s: %w", m.id.Namespace, name, err)
		}
		m.checkClaim(got)
		cur = got
	}
	updated, err := leases.Update(ctx, m.leaseFor(cur.DeepCopy(), start), metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// Someone else wrote our Lease: a peer (or the operator) claiming it
		// because it judged us dead. Find out at once rather than at the next
		// renewal, fence, and take the Lease back.
		got, gerr := leases.Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("reading Lease %s/%s after a conflict: %w", m.id.Namespace, name, gerr)
		}
		m.checkClaim(got)
		updated, err = leases.Update(ctx, m.leaseFor(got.DeepCopy(), start), metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("renewing Lease %s/%s: %w", m.id.Namespace, name, err)
	}
	return updated, nil
}

// checkClaim fences the member at once when its Lease was claimed: the
// claimer is moving its dynamic hubs, so it must treat the claim exactly like
// an expiry (fence, then re-read the placement before serving them again),
// even if its own clock says it renewed in time.
func (m *Member) checkClaim(l *coordinationv1.Lease) {
	c, ok := memberlease.Claimed(m.id.Name, l.Spec.HolderIdentity, l.Annotations)
	if !ok {
		return
	}
	if m.lease.claimed() {
		m.log.Warn("member Lease claimed by a peer that judged this member dead: dynamic hubs fenced until the placement is re-read", "by", c.By, "reason", c.Reason, "evidence", c.Message)
	}
	m.urge()
}

// leaseFor sets identity, duration, renew time, labels and load on l.
func (m *Member) leaseFor(l *coordinationv1.Lease, start time.Time) *coordinationv1.Lease {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	maps.Copy(l.Labels, memberlease.Labels(m.id.Cluster))
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	if m.id.IP != "" {
		l.Annotations[memberpod.AnnotationPodIP] = m.id.IP
	}
	load := LoadOf(m.srv.Stats())
	load.Borrowed = m.loans.borrowed()
	l.Annotations[memberpod.AnnotationLoad] = memberlease.Encode(load)
	if len(l.OwnerReferences) == 0 { // also gives a Lease from an older member its owner
		l.OwnerReferences = m.leaseOwner()
	}
	holder := m.id.Name
	secs := int32(m.id.LeaseDuration / time.Second)
	now := metav1.NewMicroTime(start)
	l.Spec.HolderIdentity = &holder
	delete(l.Annotations, memberpod.AnnotationClaim) // taken back: the claim is history
	l.Spec.LeaseDurationSeconds = &secs
	l.Spec.RenewTime = &now
	return l
}

// LoadOf turns the server's statistics into the Lease load: sessions per hub
// (named "<namespace>/<name>", see HubName) and kind, the license allocation
// the member applies (the operator's confirmation that a lowered allocation
// took effect) and what it lent of it; loans are left out of the allocation,
// which the operator counts at the lender (license.Safe).
func LoadOf(st member.Stats) memberlease.Load {
	l := memberlease.Load{Sessions: map[string]memberlease.HubLoad{}}
	if a := st.Licenses; a.ClientOwn >= 0 || a.BridgeOwn >= 0 {
		l.Licenses = &memberlease.Allocation{Client: int32(max(a.ClientOwn, 0)), Bridge: int32(max(a.BridgeOwn, 0))}
		if a.ClientLent+a.BridgeLent > 0 {
			l.Lent = &memberlease.Allocation{Client: int32(a.ClientLent), Bridge: int32(a.BridgeLent)}
		}
	}
	for _, h := range st.Hubs {
		if h.Clients+h.Bridges > 0 {
			l.Sessions[h.Name] = memberlease.HubLoad{Client: int32(h.Clients), Bridge: int32(h.Bridges)}
		}
	}
	return l
}

// leaseOwner is the member's VPNCluster as a plain owner (not controller, not
// blocking deletion, which would need more RBAC than a member has); nil
// before the cluster was read.
func (m *Member) leaseOwner() []metav1.OwnerReference {
	uid := m.clusterUID
	if uid == "" {
		return nil
	}
	return []metav1.OwnerReference{{
		APIVersion: vpnv1alpha1.GroupVersion.String(), Kind: "VPNCluster", Name: m.id.Cluster, UID: uid,
	}}
}
