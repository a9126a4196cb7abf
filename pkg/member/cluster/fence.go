// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"fmt"
	"net"
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

// expiredLocked reports whether the Lease has expired on the member's
// monotonic clock (or was never renewed). m.mu must be held.
func (m *Member) expiredLocked() bool {
	return m.lastRenew.IsZero() || time.Since(m.lastRenew) >= m.id.LeaseDuration
}

// renewedLocked records a successful renewal that started at start; an
// expiry since the last one starts a resync. m.mu must be held.
func (m *Member) renewedLocked(start time.Time) {
	if m.expiredLocked() {
		if !m.resync {
			m.log.Warn("Lease renewed after it had expired: dynamic hubs stay fenced until the placement is re-read from the API server")
		}
		m.resync, m.backRenewals, m.fresh = true, 0, nil
		m.epoch++
	}
	if m.resync {
		m.backRenewals++
	}
	m.lastRenew = start
}

// resyncStep runs step 2 when it is due; the loop calls it after each
// renewal. A failed read is retried after the next renewal.
func (m *Member) resyncStep(ctx context.Context) {
	m.mu.Lock()
	due := m.resync && m.fresh == nil && m.backRenewals >= 2 && !m.expiredLocked()
	epoch := m.epoch
	m.mu.Unlock()
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
	m.mu.Lock()
	if m.epoch == epoch && m.resync {
		m.fresh = fr
	}
	m.mu.Unlock()
}

// fenceState decides, from the cache's hubs, whether dynamic hubs are fenced
// now, ending the resync when the cache has caught up with its fresh read.
func (m *Member) fenceState(cached []*vpnv1alpha1.VirtualHub) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.expiredLocked() {
		return true
	}
	if !m.resync {
		return false
	}
	if m.fresh == nil {
		return true
	}
	if ok, why := m.fresh.caughtUp(cached); !ok {
		if why != m.lagging {
			m.lagging = why
			m.log.Info("dynamic hubs stay fenced until the informer catches up with the API server", "lag", why)
		}
		return true
	}
	m.resync, m.fresh, m.lagging = false, nil, ""
	return false
}

// fencedNowLocked is the fence as of this instant, whether or not the loop
// has applied it yet. m.mu must be held.
func (m *Member) fencedNowLocked() bool {
	return m.fenced || m.resync || m.expiredLocked()
}

// staleLocked: the applied configuration serves dynamic hubs the member may
// no longer serve. m.mu must be held.
func (m *Member) staleLocked() bool {
	return m.servesDynamic && (m.resync || m.expiredLocked())
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
		m.mu.Lock()
		stale, applied := m.staleLocked(), m.recomputed
		m.mu.Unlock()
		if !stale {
			return
		}
		select {
		case m.fenceNow <- struct{}{}:
		default:
		}
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
