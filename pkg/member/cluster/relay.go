// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubfleet/hubfleet/pkg/datagram"
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

// activeRelay is one spliced session, closed by relaySet.endMoved.
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
	// A client that offered UDP gets it from the owner with the keys the
	// entry exports from its TLS session (udprelay.go).
	udpExp := relayUDPKeys(c, &req)
	if err := mesh.OfferHandoff(&req); err != nil {
		return fmt.Errorf("%w: %v", member.ErrRelayUnreachable, err)
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
	clear(req.RelayUDPKeys)
	if werr := protocol.WriteResult(c, res); werr != nil || err != nil {
		if owner != nil {
			owner.Close()
		}
		return errors.Join(err, werr)
	}
	if res.Capabilities&protocol.CapHandoff != 0 {
		// The owner took the client's session over (protocol/handoff.go):
		// from here the entry copies bytes and holds no keys, so a UDP
		// channel needs nothing from it but the datagram forwarding every
		// session gets. Closing the TCP connections ends the copy at once.
		cr, or := protocol.SpliceTarget(c), protocol.SpliceTarget(owner)
		ar := &activeRelay{hub: req.Hub, peer: peer, close: func() { cr.Close(); or.Close() }}
		m.relays.add(ar, &m.view)
		defer m.relays.remove(ar)
		return mesh.SpliceRaw(c, owner)
	}
	defer owner.Close()
	if udpExp != nil && res.UDP != nil && res.Capabilities&protocol.CapUDP != 0 {
		defer m.relays.addUDP(peer, res.UDP.Session, udpExp)()
	}
	// Closing a TLS connection sends close_notify with a 5 s write deadline;
	// to a client that stopped reading that blocks, and it is called under
	// the relay set's lock, so it runs on its own goroutine.
	ar := &activeRelay{hub: req.Hub, peer: peer, close: func() { go func() { c.Close(); owner.Close() }() }}
	m.relays.add(ar, &m.view)
	defer m.relays.remove(ar)
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
		next := m.passes.next()
		v := m.view.Load()
		owner, dynamic := v.routes.dynamic[hub]
		_, isPeer := v.peers[owner]
		fenced := m.lease.fencedNow()
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
		next := m.passes.next()
		if !m.view.Load().holds(ar) {
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

// holds reports whether v still sends ar's hub to ar's peer: the peer is a
// mesh peer and, for a dynamic hub, still its assigned member, for a static
// hub still a ready instance.
func (v *view) holds(ar *activeRelay) bool {
	if _, ok := v.peers[ar.peer]; !ok {
		return false
	}
	if owner, dynamic := v.routes.dynamic[ar.hub]; dynamic {
		return owner == ar.peer
	}
	in, static := v.routes.static[ar.hub]
	if !static {
		return false // deleted, or no longer assigned anywhere
	}
	if ms, ok := v.routes.members[ar.peer]; ok && !ms.Ready {
		return false
	}
	return slices.Contains(in, ar.peer)
}

// relaySet are the sessions relayed from this member, so that a pass that
// finds a session's route gone ends it.
type relaySet struct {
	log *slog.Logger

	mu  sync.Mutex
	set map[*activeRelay]struct{}
	// udp are the exporters of relayed sessions with a UDP channel, for
	// their owners' key calls (udprelay.go).
	udp map[relayUDPKey]datagram.Exporter
}

func newRelaySet(log *slog.Logger) *relaySet {
	return &relaySet{log: log, set: map[*activeRelay]struct{}{}}
}

// add registers ar and ends it at once if the current view no longer routes
// it (it moved while the login was answered). The view is read under the
// set's lock: a pass publishes its view before it calls endMoved, so
// either this reads the new view or endMoved finds ar.
func (s *relaySet) add(ar *activeRelay, cur *atomic.Pointer[view]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set[ar] = struct{}{}
	if !cur.Load().holds(ar) {
		ar.close()
		delete(s.set, ar)
	}
}

func (s *relaySet) remove(ar *activeRelay) {
	s.mu.Lock()
	delete(s.set, ar)
	s.mu.Unlock()
}

// endMoved ends the relays whose route v no longer holds; the loop calls it
// after publishing v.
func (s *relaySet) endMoved(v *view) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ar := range s.set {
		if !v.holds(ar) {
			s.log.Info("ending a relayed session: its hub's route changed", "hub", ar.hub, "owner", ar.peer)
			ar.close()
			delete(s.set, ar)
		}
	}
}
