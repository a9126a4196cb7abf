// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

// Failover without the operator (docs/design-operator.md): every member
// watches its peers' Leases and mesh links, and when a peer that holds dynamic
// hubs is judged dead, one surviving member claims the dead peer's Lease and
// moves its hubs by writing their status, exactly as the operator would. The
// operator stays the place of creation-time placement, licenses and
// conditions; this only keeps a member's death from waiting for an operator
// pod to be rescheduled and elected.
//
// Who acts: on a Lease expiry (which every member sees alike) the live
// members sorted by name; the first acts at once, the k-th only k renewal
// intervals later if nothing has happened by then (the first may be
// partitioned from the API server). On a death certificate of its own (a
// refused probe, which not every peer gets) a member acts at once. Exactly one move wins because the
// claim is an update of the dead peer's Lease at the resourceVersion that
// was judged (a renewal in between makes it fail), and each hub's status is
// patched at the resourceVersion its move was decided on.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
	"github.com/hubfleet/hubfleet/pkg/placement"
)

// Reasons a member gives for the moves it makes (lastReassignment.reason and
// the claim on the dead peer's Lease).
const (
	// ReasonMemberDead: the peer's mesh link reset and its mesh port refused
	// a connection, so nothing listens there any more — no Lease wait.
	ReasonMemberDead   = "MemberDead"
	ReasonLeaseExpired = "LeaseExpired"
)

const (
	// probeTimeout bounds the connection attempt that tells a dead process
	// (refused at once by its node's kernel) from a silent one (no answer:
	// judged by its Lease instead).
	probeTimeout = 500 * time.Millisecond
	// certTTL is how long a death certificate stands. After that the Lease
	// decides; a certificate is only ever a shortcut to the same verdict.
	certTTL = 10 * time.Second
	// probeHold is how long an accepted probe is held: a live mesh server
	// keeps it open (waiting for a ClientHello), a closing listener resets it.
	probeHold = 250 * time.Millisecond
)

// failover is the member's half of failover without the operator: the
// death certificates it holds and the worker that claims failed peers'
// Leases and moves their hubs. What to act on, and when, the loop decides
// (decideFailover) on its snapshot; the worker only writes, off the loop,
// because each write may take up to a renewal interval.
type failover struct {
	m    *Member
	work chan failoverWork // the latest work; a newer one replaces it

	mu    sync.Mutex
	dead  map[string]deathCert // peers whose process is gone (mesh evidence)
	held  string               // last hold logged, so it is logged once
	retry time.Time            // a failed attempt asks for another pass then
}

type deathCert struct {
	at   time.Time
	msg  string
	addr string // the mesh address that refused: the process it was about
}

// failoverWork is what the loop hands the worker: the failed peers due now,
// and the snapshot they were judged on.
type failoverWork struct {
	vc    *vpnv1alpha1.VPNCluster
	peers []peerState
	hubs  []*vpnv1alpha1.VirtualHub
	due   failoverDue
	now   time.Time
}

// union is a followed by the names of b not in a.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func newFailover(m *Member) *failover {
	return &failover{m: m, work: make(chan failoverWork, 1), dead: map[string]deathCert{}}
}

// hand gives the worker w, replacing work it has not started.
func (f *failover) hand(w failoverWork) {
	for {
		select {
		case f.work <- w:
			return
		default:
		}
		select {
		case <-f.work:
		default:
		}
	}
}

// certs are the current death certificates (expired ones dropped).
func (f *failover) certs(now time.Time) map[string]deathCert {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]deathCert, len(f.dead))
	for name, c := range f.dead {
		if now.Sub(c.at) >= certTTL {
			delete(f.dead, name)
			continue
		}
		out[name] = c
	}
	return out
}

// retryAt is when a failed attempt wants the loop to look again (zero if
// none).
func (f *failover) retryAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.retry
}

// linkDown is the mesh's OnLinkDown: probe the peer's mesh port; a refused
// connection means its process is gone (the pod's network namespace is still
// there and its kernel answers, but nothing listens), which is enough to act
// on without waiting for its Lease to expire.
func (f *failover) linkDown(peer string) {
	addr, ok := f.m.view.Load().peers[peer]
	if !ok {
		f.m.log.Info("mesh link to a peer ended; not a known peer, no probe", "peer", peer)
		return
	}
	if alive, why := probeMesh(addr); alive || why != "" {
		f.m.log.Info("mesh link to a peer ended; not a death", "peer", peer, "addr", addr, "probe", why)
		return
	}
	f.mu.Lock()
	f.dead[peer] = deathCert{at: time.Now(), addr: addr, msg: fmt.Sprintf("its mesh link ended and %s refused a connection (process gone)", addr)}
	f.mu.Unlock()
	f.m.log.Warn("peer member's process is gone", "peer", peer, "addr", addr)
	f.m.urge()
}

// probeMesh tells a dead peer process from a live or silent one by its mesh
// port: it returns (false, "") only when nothing listens there — connections
// refused or reset by the peer's kernel. A connection the kernel accepts is
// not proof of life: a killed process's listening socket is closed after its
// other sockets, so a probe right after the link ended can be accepted into
// the backlog and then reset. It is held open briefly: a live mesh server
// waits for the TLS ClientHello (the read times out), a closing listener
// resets it, and the next attempt is refused.
func probeMesh(addr string) (alive bool, why string) {
	d := net.Dialer{Timeout: probeTimeout}
	for range 3 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			if gone(err) {
				return false, ""
			}
			return false, "no answer: " + err.Error() // frozen or cut off: the Lease decides
		}
		_ = c.SetReadDeadline(time.Now().Add(probeHold))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return true, "its mesh port accepts and holds a connection"
		}
		// Reset or closed at once: the listener is going; ask again.
	}
	return true, "its mesh port accepts connections but closes them"
}

// gone: the peer's kernel answered that nothing listens (or stopped listening).
func gone(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// certified reports whether this member holds a current death certificate for
// peer.
func (f *failover) certified(peer string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.dead[peer]
	return ok && time.Since(c.at) < certTTL
}

// run does the work the loop hands it, until ctx ends.
func (f *failover) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-f.work:
			f.do(ctx, w)
		}
	}
}

// do claims each due peer's Lease (unless claimed already) and moves its
// dynamic hubs. A failure asks the loop to look again shortly: the cache
// soon shows who won, or the conflict is gone.
func (f *failover) do(ctx context.Context, w failoverWork) {
	m := f.m
	failed := false
	for _, name := range union(w.due.hubs, w.due.singletons) {
		if m.lease.fencedNow() {
			return // a member that cannot vouch for its own view acts on nothing
		}
		i := slices.IndexFunc(w.peers, func(p peerState) bool { return p.name == name })
		if i < 0 {
			continue
		}
		p := &w.peers[i]
		if p.claim == nil {
			if err := f.claim(ctx, p, w.now); err != nil {
				m.log.Info("not claiming the failed peer's Lease", "peer", name, "err", err)
				failed = true
				continue
			}
		}
		if slices.Contains(w.due.hubs, name) {
			if err := f.move(ctx, w.vc, w.peers, w.hubs, name, w.now); err != nil {
				m.log.Warn("moving a failed peer's dynamic hubs", "peer", name, "err", err)
				failed = true
			}
		}
		if slices.Contains(w.due.singletons, name) {
			if err := f.moveSingletons(ctx, w.peers, w.hubs, p, w.now); err != nil {
				m.log.Warn("moving a failed peer's local bridges and DHCP servers", "peer", name, "err", err)
				failed = true
			}
		}
	}
	f.mu.Lock()
	f.retry = time.Time{}
	if failed {
		f.retry = time.Now().Add(200 * time.Millisecond)
	}
	f.mu.Unlock()
	if failed {
		m.urge()
	}
}

// claim writes this member's claim on p's Lease at the resourceVersion p was
// judged on: a renewal since then makes it fail with a conflict.
func (f *failover) claim(ctx context.Context, p *peerState, now time.Time) error {
	m := f.m
	l := p.lease.DeepCopy()
	holder := memberpod.ClaimPrefix + m.id.Name
	c := memberlease.Claim{By: m.id.Name, Reason: p.reason, Message: p.msg, Time: now}
	l.Spec.HolderIdentity = &holder
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[memberpod.AnnotationClaim] = memberlease.EncodeClaim(c)
	cctx, cancel := context.WithTimeout(ctx, m.renewInterval())
	defer cancel()
	if _, err := m.cs.CoordinationV1().Leases(l.Namespace).Update(cctx, l, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("its Lease changed since it was judged (renewed, or claimed by another member): %w", err)
		}
		return err
	}
	m.log.Warn("claimed a failed peer's Lease: moving its dynamic hubs", "peer", p.name, "reason", p.reason, "evidence", p.msg)
	p.claim = &c
	return nil
}

// move places the dynamic hubs held by from with the operator's placement
// rule (pkg/placement) on this member's snapshot and writes each move.
func (f *failover) move(ctx context.Context, vc *vpnv1alpha1.VPNCluster, peers []peerState, hubs []*vpnv1alpha1.VirtualHub, from string, now time.Time) error {
	m := f.m
	snap := placement.Snapshot{MaxUnavailable: memberpod.MaxUnavailable(vc.Spec.Failover.MaxUnavailable, int(vc.Spec.Members))}
	perHub := map[string]int{}
	var fromPeer *peerState
	for i := range peers {
		p := &peers[i]
		c, b := p.load.Totals()
		for k, h := range p.load.Sessions {
			perHub[k] += int(h.Total())
		}
		switch {
		case p.name == from:
			fromPeer = p
			snap.Failed = append(snap.Failed, p.name)
		case p.failed:
			snap.Failed = append(snap.Failed, p.name)
		case p.live:
			if p.name == m.id.Name {
				st := LoadOf(m.srv.Stats())
				c, b = st.Totals()
			}
			snap.Members = append(snap.Members, placement.Member{
				Name: p.name, Ready: true, Weight: int(vc.Spec.Weight),
				Sessions: int(c + b), MaxSessions: int(vc.Spec.MaxSessionsPerMember),
			})
		}
	}
	byKey := map[string]*vpnv1alpha1.VirtualHub{}
	for _, h := range hubs {
		if h.Spec.Type == vpnv1alpha1.HubStatic || !m.id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil || h.Status.AssignedMember == "" {
			continue
		}
		key := HubName(h)
		byKey[key] = h
		snap.Hubs = append(snap.Hubs, placement.Hub{Key: key, Type: placement.Dynamic, Assigned: h.Status.AssignedMember, Sessions: perHub[key]})
	}
	d := placement.Place(snap)
	if d.Held {
		f.mu.Lock()
		if f.held != d.HeldReason {
			f.held = d.HeldReason
			m.log.Warn("not moving a failed peer's hubs: too many members failed at once", "peer", from, "hold", d.HeldReason)
		}
		f.mu.Unlock()
	}
	var errs []error
	moved := 0
	for _, mv := range d.Moves {
		h := byKey[mv.Hub]
		if mv.From != from || h == nil {
			continue
		}
		if err := f.writeMove(ctx, h, fromPeer, mv.To, now); err != nil {
			errs = append(errs, fmt.Errorf("hub %s: %w", mv.Hub, err))
			continue
		}
		moved++
	}
	if moved > 0 {
		m.log.Warn("moved a failed peer's dynamic hubs", "peer", from, "hubs", moved, "reason", fromPeer.reason)
	}
	for _, key := range d.Unplaced {
		if h := byKey[key]; h != nil && h.Status.AssignedMember == from {
			m.log.Warn("a failed peer's dynamic hub has no member to go to", "hub", key, "peer", from)
		}
	}
	return errors.Join(errs...)
}

// writeMove patches h's status to show it on member to, over the status
// (resourceVersion) the move was decided on, so neither a second member nor
// the operator with an older view can move it twice.
func (f *failover) writeMove(ctx context.Context, h *vpnv1alpha1.VirtualHub, from *peerState, to string, now time.Time) error {
	return f.writeStatus(ctx, h,
		func(h *vpnv1alpha1.VirtualHub) bool { return h.Status.AssignedMember == from.name },
		func(h *vpnv1alpha1.VirtualHub) vpnv1alpha1.VirtualHubStatus {
			return movedStatus(h, from.name, to, from.reason, from.msg, f.m.id.Name, now)
		})
}

// writeStatus patches h's status to next(h) with an optimistic lock. On a
// conflict — the status changed since the cache's copy, usually the
// operator writing the failed member's Ready condition — it reads the hub
// from the API server rather than wait for the cache, and writes once more
// only if due(fresh) still holds (else someone else moved it).
func (f *failover) writeStatus(ctx context.Context, h *vpnv1alpha1.VirtualHub, due func(*vpnv1alpha1.VirtualHub) bool, next func(*vpnv1alpha1.VirtualHub) vpnv1alpha1.VirtualHubStatus) error {
	m := f.m
	cctx, cancel := context.WithTimeout(ctx, m.renewInterval())
	defer cancel()
	for attempt := 0; ; attempt++ {
		base := h.DeepCopy()
		obj := base.DeepCopy()
		obj.Status = next(h)
		err := m.reader.Status().Patch(cctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if !apierrors.IsConflict(err) || attempt > 0 {
			if apierrors.IsConflict(err) {
				return fmt.Errorf("its status changed again since the move was decided: %w", err)
			}
			return client.IgnoreNotFound(err)
		}
		fresh := &vpnv1alpha1.VirtualHub{}
		if err := m.reader.Get(cctx, client.ObjectKeyFromObject(h), fresh); err != nil {
			return client.IgnoreNotFound(err)
		}
		if !due(fresh) {
			return nil
		}
		h = fresh
	}
}

// movedStatus is h's status once moved from one member to another by this
// member; the conditions read as the operator writes them, naming who moved
// it and why. The operator recomputes the rest (sessions, Events) when it
// next reconciles.
func movedStatus(h *vpnv1alpha1.VirtualHub, from, to, reason, evidence, by string, now time.Time) vpnv1alpha1.VirtualHubStatus {
	st := *h.Status.DeepCopy()
	st.AssignedMember, st.Placement = to, to
	st.Instances = []vpnv1alpha1.HubInstance{{Member: to, Ready: true}}
	st.LastReassignment = &vpnv1alpha1.Reassignment{From: from, To: to, Reason: reason, Time: metav1.NewTime(now)}
	gen := h.Generation
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: vpnv1alpha1.ConditionScheduled, Status: metav1.ConditionTrue, Reason: "Placed", ObservedGeneration: gen,
		Message: fmt.Sprintf("assigned to member %s (moved from %s by member %s: %s)", to, from, by, evidence),
	})
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: vpnv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "MemberReady", ObservedGeneration: gen,
		Message: "member " + to + " is ready",
	})
	return st
}
