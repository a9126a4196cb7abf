// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/mesh"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// Relayed sessions at the entry member. A relay is plumbing: the session
// lives on the owner, and only the owner can end it cleanly (Shutdown). But
// an owner that is frozen or cut off cannot, and one that missed the move of
// its hub (its watch stalled) would not: its clients would stay attached to
// a copy of the hub nobody else uses. So the entry ends a relay itself as
// soon as its own view says the session's route is gone — the hub moved, the
// owner left the mesh peers or is no longer a ready instance — and the
// client, whose connection closes, logs in again at once and is routed to
// the new owner. A silent owner is also caught by the splice's idle timeout
// (the session's dead-peer timeout).

// activeRelay is one spliced session, closed by endMovedRelaysLocked.
type activeRelay struct {
	hub, peer string
	close     func()
}

// relay answers member.Options.Relay with the mesh: mesh.Relay, except that
// a failure to reach the owner is marked so the member answers the client,
// the dial is abandoned when the hub's route changes meanwhile (the client's
// retry then lands where the hub is now, possibly here), and the session is
// ended when the route changes later.
func (m *Member) relay(ctx context.Context, peer string, req protocol.LoginRequest, c net.Conn) error {
	if req.RelayClientAddr == "" {
		req.RelayClientAddr = c.RemoteAddr().String()
	}
	var owner net.Conn
	var res *protocol.LoginResult
	var err error
	hold := time.NewTimer(failoverHold)
	defer hold.Stop()
	for {
		dctx, cancel := context.WithCancelCause(ctx)
		go m.cancelOnReroute(dctx, cancel, req.Hub, peer)
		owner, res, err = m.mesh.DialRelay(dctx, peer, req)
		cause := context.Cause(dctx)
		cancel(nil)
		if res != nil {
			break // the owner answered: admitted, or refused with its reason
		}
		if errors.Is(cause, errRerouted) {
			err = cause
		}
		// The owner is gone or the hub moved while it was dialled: the move
		// lands within a few hundred milliseconds of a death, so hold the
		// client's login for it rather than refuse and have the client back
		// off and retry (docs/member-cluster.md, "Failover without the
		// operator").
		if !errors.Is(err, errRerouted) && !gone(err) && !m.failover.certified(peer) {
			return fmt.Errorf("%w: %v", member.ErrRelayUnreachable, err)
		}
		next, ok := m.waitReroute(ctx, req.Hub, peer, hold.C)
		switch {
		case !ok:
			return fmt.Errorf("%w: %v", member.ErrRelayUnreachable, err)
		case next == "":
			return member.ErrServeHere
		}
		m.log.Info("relay target gone; the hub moved meanwhile, relaying to its new owner", "hub", req.Hub, "from", peer, "to", next)
		peer = next
	}
	if werr := protocol.WriteResult(c, res); werr != nil || err != nil {
		if owner != nil {
			owner.Close()
		}
		return errors.Join(err, werr)
	}
	defer owner.Close()
	// Closing a TLS connection sends close_notify with a 5 s write deadline;
	// to a client that stopped reading that blocks, and it is called under
	// m.mu, so it runs on its own goroutine.
	ar := &activeRelay{hub: req.Hub, peer: peer, close: func() { go func() { c.Close(); owner.Close() }() }}
	m.mu.Lock()
	m.relays[ar] = struct{}{}
	if !m.routeHoldsLocked(ar) { // moved while the login was answered
		ar.close()
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.relays, ar)
		m.mu.Unlock()
	}()
	return mesh.Splice(c, owner, res.DeadPeerTimeout)
}

// failoverHold bounds how long a login whose relay target died is held for
// the hub's move: a death certificate moves it in tens to hundreds of
// milliseconds; past this the client is refused and retries as before.
const failoverHold = 1500 * time.Millisecond

// waitReroute waits until hub's route no longer points at peer, and returns
// the member that holds it now ("" for this member, which then serves the
// login itself), or false when expired fires or ctx ends first.
func (m *Member) waitReroute(ctx context.Context, hub, peer string, expired <-chan time.Time) (string, bool) {
	for {
		m.mu.Lock()
		next := m.recomputed
		owner, dynamic := m.routes.dynamic[hub]
		_, isPeer := m.peers[owner]
		fenced := m.fencedNowLocked()
		m.mu.Unlock()
		switch {
		case !dynamic || fenced:
			return "", false // static hubs and a fenced entry: refuse, as before
		case owner == m.id.Name && m.srv.Hub(hub) != nil: // placed here and applied
			return "", true
		case owner != peer && isPeer:
			return owner, true
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-expired:
			return "", false
		case <-next:
		}
	}
}

// errRerouted is the cause of a relay dial abandoned because the hub's route
// changed while it was in progress.
var errRerouted = errors.New("the hub's route changed while its owner was being dialled")

// cancelOnReroute cancels a relay dial when a recompute finds the route to
// peer for hub gone, until ctx ends.
func (m *Member) cancelOnReroute(ctx context.Context, cancel context.CancelCauseFunc, hub, peer string) {
	ar := &activeRelay{hub: hub, peer: peer}
	for {
		m.mu.Lock()
		next := m.recomputed
		holds := m.routeHoldsLocked(ar)
		m.mu.Unlock()
		if !holds {
			cancel(fmt.Errorf("%w (hub %s, was at %s)", errRerouted, hub, peer))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-next:
		}
	}
}

// routeHoldsLocked reports whether the route table still sends ar's hub to
// ar's peer: the peer is a mesh peer and, for a dynamic hub, still its
// assigned member, for a static hub still a ready instance. m.mu must be held.
func (m *Member) routeHoldsLocked(ar *activeRelay) bool {
	if _, ok := m.peers[ar.peer]; !ok {
		return false
	}
	if owner, dynamic := m.routes.dynamic[ar.hub]; dynamic {
		return owner == ar.peer
	}
	in, static := m.routes.static[ar.hub]
	if !static {
		return false // deleted, or no longer assigned anywhere
	}
	if ms, ok := m.routes.members[ar.peer]; ok && !ms.Ready {
		return false
	}
	return slices.Contains(in, ar.peer)
}

// endMovedRelaysLocked ends the relays whose route is gone; recompute calls
// it after installing a new route table. m.mu must be held.
func (m *Member) endMovedRelaysLocked() {
	for ar := range m.relays {
		if !m.routeHoldsLocked(ar) {
			m.log.Info("ending a relayed session: its hub's route changed", "hub", ar.hub, "owner", ar.peer)
			ar.close()
			delete(m.relays, ar)
		}
	}
}
