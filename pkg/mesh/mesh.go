// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package mesh connects the members of one cluster over mutual TLS on the mesh
// port: one long-lived link per member pair carries the frames of every static
// hub both members have attached, and a session whose hub lives on another
// member is relayed to that member over a connection of its own. It knows
// pkg/hub and pkg/protocol and nothing of Kubernetes; docs/mesh.md describes
// the trust model and the wire format.
package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// Options configure a Mesh.
type Options struct {
	// Self is this member's name (the pod name); peers know it by this name.
	Self string
	// TLS is used for dialling and accepting: build it with TLSConfig.
	TLS *tls.Config
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Keepalive: a link sends a Keepalive after this long without writing.
	// Default 1s.
	Keepalive time.Duration
	// DeadTimeout: a link on which nothing arrived for this long is closed and
	// redialled. Default max(3s, 3*Keepalive).
	DeadTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered, doubling redial delay.
	// Defaults 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// OnLinkDown, if set, is called (on its own goroutine) when a link to
	// peer ends while the mesh is open: with a refused reconnect it is the
	// fastest evidence that the peer's process is gone.
	OnLinkDown func(peer string)
	// OnCall, if set, answers a peer's Call (call.go): req is the request's
	// JSON, the returned value is sent back as JSON.
	OnCall func(req []byte) any
}

// Mesh is one member's side of the member mesh: a link to every peer,
// multiplexing the static hubs both sides have attached, and relayed sessions.
type Mesh struct {
	opt Options
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex // guards everything below and every link's control state
	closed    bool
	nextID    uint32
	hubs      map[string]*localHub
	peers     map[string]string             // member name -> address
	dialers   map[string]context.CancelFunc // peers this member dials
	links     map[string]*link              // live links by peer name
	listeners map[net.Listener]struct{}
	onRelay   func(*protocol.LoginRequest, net.Conn)

	udpMeshState // datagram forwarding (udp.go)
}

type localHub struct {
	id uint32
	h  *hub.Hub
}

// New returns a mesh; it does nothing until Serve and SetPeers.
func New(opt Options) *Mesh {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Keepalive <= 0 {
		opt.Keepalive = time.Second
	}
	if opt.DeadTimeout <= opt.Keepalive {
		opt.DeadTimeout = max(3*time.Second, 3*opt.Keepalive)
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = 100 * time.Millisecond
	}
	if opt.MaxBackoff < opt.MinBackoff {
		opt.MaxBackoff = max(5*time.Second, opt.MinBackoff)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mesh{
		opt: opt, log: opt.Logger.With("mesh", opt.Self),
		ctx: ctx, cancel: cancel,
		hubs:      make(map[string]*localHub),
		peers:     make(map[string]string),
		dialers:   make(map[string]context.CancelFunc),
		links:     make(map[string]*link),
		listeners: make(map[net.Listener]struct{}),
	}
}

// ErrClosed is returned once the mesh is closed.
var ErrClosed = errors.New("mesh closed")

// Serve accepts links and relayed sessions on ln (the mesh port, 8444) until
// ln fails or the mesh is closed. The TLS handshake runs per connection, so a
// slow or hostile dialer holds up nobody else.
func (m *Mesh) Serve(ln net.Listener) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.listeners[ln] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.listeners, ln)
		m.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if m.ctx.Err() != nil {
				return ErrClosed
			}
			return err
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.accept(c)
		}()
	}
}

func (m *Mesh) accept(raw net.Conn) {
	protocol.TuneTCP(raw)
	// Raw system calls, and the batch writes of relayed sessions and
	// splices, as on client sessions (protocol.WrapTCP).
	raw = protocol.WrapTCP(raw)
	tc := tls.Server(raw, m.opt.TLS)
	ctx, cancel := context.WithTimeout(m.ctx, protocol.LoginTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		m.log.Info("mesh handshake refused", "remote", raw.RemoteAddr(), "err", err)
		raw.Close()
		return
	}
	switch p := tc.ConnectionState().NegotiatedProtocol; p {
	case ALPNLink:
		m.acceptLink(tc)
	case ALPNRelay:
		m.acceptRelay(tc)
	case ALPNCall:
		m.acceptCall(tc)
	default:
		m.log.Info("mesh connection without a mesh ALPN", "remote", raw.RemoteAddr(), "alpn", p)
		tc.Close()
	}
}

// SetPeers sets the other members and their mesh addresses ("ip:port").
// This member dials the peers whose names sort after its own and waits for the
// others to dial it, so each pair has exactly one link; links from members
// not listed are refused. Removed peers' links are closed; a changed address
// is redialled.
func (m *Mesh) SetPeers(peers map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for name, addr := range m.peers {
		if peers[name] == addr {
			continue
		}
		if stop, ok := m.dialers[name]; ok {
			stop()
			delete(m.dialers, name)
		}
	}
	// The set is authoritative: a link to a member not in it (removed,
	// moved, or one that dialled before this member learned of it and has
	// gone since) is closed; a moved peer is redialled below or redials.
	for name, l := range m.links {
		addr, ok := peers[name]
		if old, known := m.peers[name]; !ok || (known && old != addr) {
			l.close(errors.New("peer removed or moved"))
		}
	}
	next := make(map[string]string, len(peers))
	for name, addr := range peers {
		if name == m.opt.Self {
			continue
		}
		next[name] = addr
		if name > m.opt.Self && m.dialers[name] == nil {
			ctx, stop := context.WithCancel(m.ctx)
			m.dialers[name] = stop
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.dialLoop(ctx, name, addr)
			}()
		}
	}
	m.peers = next
	m.publishTagsLocked()
}

// dialLoop keeps a link to name up until ctx ends, redialling with jittered
// exponential backoff; a link that stayed up resets the backoff.
func (m *Mesh) dialLoop(ctx context.Context, name, addr string) {
	backoff := m.opt.MinBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := m.dialLink(ctx, name, addr)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > m.opt.DeadTimeout {
			backoff = m.opt.MinBackoff
		}
		m.log.Info("mesh link down, redialling", "peer", name, "addr", addr, "err", err, "in", backoff)
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, m.opt.MaxBackoff)
	}
}

// linkEnded tells OnLinkDown that the link to peer ended.
func (m *Mesh) linkEnded(peer string) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if !closed && m.opt.OnLinkDown != nil {
		go m.opt.OnLinkDown(peer)
	}
}

// dialTLS connects to addr and completes a handshake offering proto.
func (m *Mesh) dialTLS(ctx context.Context, addr, proto string) (*tls.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	protocol.TuneTCP(raw)
	raw = protocol.WrapTCP(raw)
	tc := tls.Client(raw, clientConfig(m.opt.TLS, proto))
	hctx, cancel := context.WithTimeout(ctx, protocol.LoginTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// AttachHub adds a local static hub instance to the fabric: it gets a peer
// port to every linked member that has attached a hub of the same name. name
// must be the same on every member (namespace/name of the VirtualHub).
// Attaching a name again replaces the earlier hub.
func (m *Mesh) AttachHub(name string, h *hub.Hub) {
	if len(name) > maxHubName {
		m.log.Error("hub name too long for the mesh, not attached", "hub", name)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if old := m.hubs[name]; old != nil {
		for _, l := range m.links {
			l.localDetachLocked(name, old.id)
		}
	}
	m.nextID++
	lh := &localHub{id: m.nextID, h: h}
	m.hubs[name] = lh
	for _, l := range m.links {
		l.localAttachLocked(name, lh)
	}
}

// DetachHub removes a hub from the fabric: its peer ports are closed (their
// MACs forgotten) and peers stop sending its frames.
func (m *Mesh) DetachHub(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lh := m.hubs[name]
	if lh == nil {
		return
	}
	delete(m.hubs, name)
	for _, l := range m.links {
		l.localDetachLocked(name, lh.id)
	}
}

// Peers returns the names of the members with a live link.
func (m *Mesh) Peers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name := range m.links {
		out = append(out, name)
	}
	return out
}

// Close closes every link and listener and waits for the mesh's goroutines.
// Relayed sessions already spliced are the caller's: they end with their
// connections.
func (m *Mesh) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cancel()
	for ln := range m.listeners {
		ln.Close()
	}
	for _, l := range m.links {
		l.close(ErrClosed)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// PortStats are the counters of one shared hub's port toward one peer: frames
// in came from the peer, frames out went to it.
type PortStats struct {
	Peer string `json:"peer"`
	Hub  string `json:"hub"`
	hub.PortStats
}

// Stats returns the counters of every open peer port, for status and
// metrics. A hub appears once per peer it is shared with.
func (m *Mesh) Stats() []PortStats {
	m.mu.Lock()
	var ports []PortStats
	var open []*peerPort
	var peers []string
	for name, l := range m.links {
		for _, pp := range l.ports {
			open = append(open, pp)
			peers = append(peers, name)
		}
	}
	m.mu.Unlock()
	// Port.Stats takes the hub lock; not under m.mu.
	for i, pp := range open {
		ports = append(ports, PortStats{Peer: peers[i], Hub: pp.name, PortStats: pp.port.Stats()})
	}
	return ports
}

// HubPeers returns the peers a hub is shared with right now: linked members
// that attached the same hub name.
func (m *Mesh) HubPeers(name string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for peer, l := range m.links {
		for _, pp := range l.ports {
			if pp.name == name {
				out = append(out, peer)
			}
		}
	}
	slices.Sort(out)
	return out
}
