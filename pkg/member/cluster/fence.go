// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Waking up after the Lease expired (docs/member-cluster.md, "Fencing").
//
// A member whose Lease expired — frozen (SIGSTOP, a paused VM), cut off, or
// just starting — may have lost its dynamic hubs to another member. When it
// can renew again, its informer cache still holds the placement from before:
// the watch events that moved the hubs sit unread in its sockets, or its
// watch broke and the reflector has not re-listed yet. Lifting the fence at
// the renewal and applying that cache served a hub the operator had moved
// (two members with one dynamic hub, clients split across two copies of it).
//
// So an expiry starts a resync, and dynamic hubs stay fenced until it ends:
//  1. wait for a second successful renewal after the one that brought the
//     Lease back, so a move the operator decided on the expired Lease just
//     before that renewal has had a renewal interval to be written;
//  2. read the hubs from the API server directly (a consistent list, not
//     the cache);
//  3. wait until the cache holds every hub at least as new as that read
//     (resourceVersion comparison), then compute the configuration from it.
//
// Meanwhile connections accepted on the VPN and mesh ports are held until
// the fence is applied (gateListener): after a freeze every goroutine wakes
// at once, and a login must not be admitted to a hub the process still
// serves only because the fence timer's goroutine has not run yet.

// freshRead is a consistent read of the hubs taken after a renewal.
type freshRead struct {
	epoch  uint64                          // the resync it belongs to
	listRV string                          // the list's resourceVersion
	rv     map[types.NamespacedName]string // each hub's resourceVersion
}

// readPlacement lists the hubs from the API server, in the cache's scope.
func (m *Member) readPlacement(ctx context.Context, epoch uint64) (*freshRead, error) {
	var hubs vpnv1alpha1.VirtualHubList
	var opts []client.ListOption
	if !m.wide {
		opts = append(opts, client.InNamespace(m.id.Namespace))
	}
	if err := m.reader.List(ctx, &hubs, opts...); err != nil {
		return nil, fmt.Errorf("reading VirtualHubs from the API server after the Lease expired: %w", err)
	}
	fr := &freshRead{epoch: epoch, listRV: hubs.ResourceVersion, rv: make(map[types.NamespacedName]string, len(hubs.Items))}
	for i := range hubs.Items {
		h := &hubs.Items[i]
		fr.rv[types.NamespacedName{Namespace: h.Namespace, Name: h.Name}] = h.ResourceVersion
	}
	return fr, nil
}

// caughtUp reports whether the cached hubs are at least as new as the read:
// each hub the read saw is cached at its version or later, and a cached hub
// the read did not see was created after it (not deleted before it). A hub
// the read saw but the cache lacks is fine: not serving it is the safe side,
// and its add event recomputes.
func (f *freshRead) caughtUp(cached []*vpnv1alpha1.VirtualHub) (bool, string) {
	for _, h := range cached {
		key := types.NamespacedName{Namespace: h.Namespace, Name: h.Name}
		if want, ok := f.rv[key]; ok {
			if !atLeast(h.ResourceVersion, want) {
				return false, fmt.Sprintf("cache has %s at resourceVersion %s, the API server had %s", key, h.ResourceVersion, want)
			}
		} else if !newer(h.ResourceVersion, f.listRV) {
			return false, fmt.Sprintf("cache still has %s, deleted before resourceVersion %s", key, f.listRV)
		}
	}
	return true, ""
}

// atLeast and newer compare resourceVersions as the API documents them
// (integers); should a server hand out others, only equality counts as
// caught up, and nothing as newer.
func atLeast(have, want string) bool {
	c, err := resourceversion.CompareResourceVersion(have, want)
	if err != nil {
		return have == want
	}
	return c >= 0
}

func newer(have, than string) bool {
	c, err := resourceversion.CompareResourceVersion(have, than)
	return err == nil && c > 0
}

// leaseState is the member's own Lease as it bears on fencing: when it was
// last renewed (on the monotonic clock) and the resync after an expiry. The
// renewal loop writes it; the loop, the listeners' gate, routing and the
// bridges read it, each through one call under its own lock.
type leaseState struct {
	duration time.Duration
	log      *slog.Logger

	mu        sync.Mutex
	lastRenew time.Time // monotonic; zero before the first renewal
	applied   bool      // the fence as the loop last applied it
	// The resync after an expiry: dynamic hubs stay fenced while resync is
	// set; epoch counts expiries, backRenewals the renewals since the last
	// one, fresh is the API read the cache must catch up with.
	resync       bool
	epoch        uint64
	backRenewals int
	fresh        *freshRead
	lagging      string // last logged reason the cache is behind
}

func newLeaseState(duration time.Duration, log *slog.Logger) *leaseState {
	return &leaseState{duration: duration, log: log, applied: true, resync: true}
}

// expiredLocked reports whether the Lease has expired on the member's
// monotonic clock (or was never renewed). l.mu must be held.
func (l *leaseState) expiredLocked() bool {
	return l.lastRenew.IsZero() || time.Since(l.lastRenew) >= l.duration
}

func (l *leaseState) expired() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expiredLocked()
}

// renewed records a successful renewal that started at start; an expiry
// since the last one starts a resync.
func (l *leaseState) renewed(start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.expiredLocked() {
		if !l.resync {
			l.log.Warn("Lease renewed after it had expired: dynamic hubs stay fenced until the placement is re-read from the API server")
		}
		l.resync, l.backRenewals, l.fresh = true, 0, nil
		l.epoch++
	}
	if l.resync {
		l.backRenewals++
	}
	l.lastRenew = start
}

// claimed treats the Lease as expired now (a peer claimed it); it reports
// whether it had been renewed before.
func (l *leaseState) claimed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.lastRenew
	l.lastRenew = time.Time{}
	return !was.IsZero()
}

// resyncDue reports whether step 2 is due, and for which resync.
func (l *leaseState) resyncDue() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch, l.resync && l.fresh == nil && l.backRenewals >= 2 && !l.expiredLocked()
}

// setFresh records the read of resync epoch, unless another expiry began.
func (l *leaseState) setFresh(epoch uint64, fr *freshRead) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == epoch && l.resync {
		l.fresh = fr
	}
}

// decide says, from the cache's hubs, whether dynamic hubs are fenced now,
// ending the resync when the cache has caught up with its fresh read.
func (l *leaseState) decide(cached []*vpnv1alpha1.VirtualHub) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.expiredLocked() {
		return true
	}
	if !l.resync {
		return false
	}
	if l.fresh == nil {
		return true
	}
	if ok, why := l.fresh.caughtUp(cached); !ok {
		if why != l.lagging {
			l.lagging = why
			l.log.Info("dynamic hubs stay fenced until the informer catches up with the API server", "lag", why)
		}
		return true
	}
	l.resync, l.fresh, l.lagging = false, nil, ""
	return false
}

// setApplied records the fence the loop applied and returns the one before.
func (l *leaseState) setApplied(fenced bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.applied
	l.applied = fenced
	return was
}

// fencedNow is the fence as of this instant, whether or not the loop has
// applied it yet.
func (l *leaseState) fencedNow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied || l.resync || l.expiredLocked()
}

// appliedFence is the fence as the loop last applied it (metrics).
func (l *leaseState) appliedFence() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied
}

// untrusted: dynamic placement the member serves may be stale (expired, or
// not re-read since it expired).
func (l *leaseState) untrusted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.resync || l.expiredLocked()
}

// until is how long until the Lease expires counted from the start of the
// last successful renewal, on the monotonic clock (an hour when already
// expired: only a renewal lifts the fence, and that wakes the loop itself).
func (l *leaseState) until() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastRenew.IsZero() {
		return time.Hour
	}
	if d := l.duration - time.Since(l.lastRenew); d > 0 {
		return d
	}
	return time.Hour
}

// untilWithin is how long until the Lease is within margin of expiring;
// zero or less when it already is (or was never renewed, or is resyncing).
func (l *leaseState) untilWithin(margin time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastRenew.IsZero() || l.resync {
		return 0
	}
	return l.duration - margin - time.Since(l.lastRenew)
}

// last is the start of the last successful renewal (zero if none).
func (l *leaseState) last() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastRenew
}

// readiness is nil when the member serves the current placement.
func (l *leaseState) readiness() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lastRenew.IsZero():
		return errors.New("fenced: the member Lease has not been renewed yet")
	case l.expiredLocked():
		return fmt.Errorf("fenced: the member Lease was not renewed within %v", l.duration)
	case l.resync || l.applied:
		return errors.New("fenced: re-reading the placement after the member Lease expired")
	}
	return nil
}

// resyncStep runs step 2 when it is due; the loop calls it after each
// renewal. A failed read is retried after the next renewal.
func (m *Member) resyncStep(ctx context.Context) {
	epoch, due := m.lease.resyncDue()
	if !due {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.renewInterval())
	fr, err := m.readPlacement(rctx, epoch)
	cancel()
	if err != nil {
		m.log.Warn("dynamic hubs stay fenced", "err", err)
		return
	}
	m.lease.setFresh(epoch, fr)
}

// stale: the applied configuration serves dynamic hubs the member may no
// longer serve.
func (m *Member) stale() bool {
	return m.config.servesDynamic() && m.lease.untrusted()
}

// admitGateTimeout bounds how long an accepted connection waits for the
// fence to be applied; the loop applies it within milliseconds, and a member
// that cannot must not stop accepting for its static hubs.
const admitGateTimeout = 2 * time.Second

// waitCurrent returns once the applied configuration matches the fence, or
// after admitGateTimeout.
func (m *Member) waitCurrent() {
	deadline := time.NewTimer(admitGateTimeout)
	defer deadline.Stop()
	for {
		applied := m.passes.next()
		if !m.stale() {
			return
		}
		m.urge()
		select {
		case <-applied:
		case <-deadline.C:
			m.log.Warn("admitting a connection although the fence is not applied yet", "waited", admitGateTimeout)
			return
		}
	}
}

// gateListener holds each accepted connection until the fence is applied.
type gateListener struct {
	net.Listener
	m *Member
}

func (l gateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.m.waitCurrent()
	}
	return c, err
}
