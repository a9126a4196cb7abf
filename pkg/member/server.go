// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package member is the member server: it accepts VPN sessions over TLS, logs them
// in (password or resumption ticket, hub capacity, connection licenses) and
// attaches each to its Virtual Hub, with one reader and one writer goroutine per
// session on a path that allocates nothing per frame.
//
// Configuration comes as a Config, from a file (LoadConfig) or, in cluster mode,
// from Kubernetes objects; Apply swaps it in without dropping sessions of hubs
// that remain.
package member

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/license"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// Options are the parts of a Server that are not configuration.
type Options struct {
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now; used for tickets

	// Route, when set with Relay, is asked where a login's hub lives when this
	// member does not serve it: ok and the member name to relay the session to,
	// or false to refuse with UnknownHub as before. Cluster mode answers from
	// the hubs' placement (status.assignedMember).
	Route func(req *protocol.LoginRequest) (peer string, ok bool)
	// Relay carries a routed session to peer (mesh.Relay): it sends the owner's
	// LoginResult to client, refusals included, and splices the two until the
	// session ends. An error wrapping ErrRelayUnreachable means client was sent
	// nothing; the member then refuses with Internal so the client retries.
	// ctx bounds reaching the owner and its answer, not the session.
	Relay func(ctx context.Context, peer string, req protocol.LoginRequest, client net.Conn) error
	// Known, if set, reports whether a hub this member does not serve exists
	// in the cluster all the same (being placed, moving, waiting for its
	// users Secret, or this member is fenced). Such logins are refused with
	// NotServedHere, which clients retry, instead of UnknownHub, which tells
	// them the name is wrong.
	Known func(hub string) bool
	// Borrow, if set, is asked for one license of kind k when this member's
	// own are all in use (pkg/license loans): it returns true once a peer
	// lent one and it was added to Gate(). A login refused after that means
	// the cluster's total is in use.
	Borrow func(ctx context.Context, k sessionkind.Kind) bool
	// UDPForward, if set, reaches the other members' UDP sockets and
	// sessions (cluster mode: the mesh; udp.go).
	UDPForward UDPForwarder
	// OnSessions, if set, is called (without locks held) when a session of
	// hub started or ended; Sessions lists them (sessions.go).
	OnSessions func(hub string)
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("member: server closed")

// Server is a member server. Its methods are safe for concurrent use.
type Server struct {
	log     *slog.Logger
	now     func() time.Time
	route   func(*protocol.LoginRequest) (string, bool)
	relayTo func(context.Context, string, protocol.LoginRequest, net.Conn) error
	known   func(string) bool
	borrow  func(context.Context, sessionkind.Kind) bool
	udpFwd  UDPForwarder
	onSess  func(string)

	settings atomic.Pointer[settings]
	gate     *license.Gate
	tlsConf  *tls.Config

	// For the metrics (metrics.go): one atomic add per login or relay.
	logins   loginCounters
	relaying atomic.Int64  // sessions relayed to their hub's owner now
	handoffs atomic.Uint64 // relayed logins taken over by handoff (handoff.go)

	udp atomic.Pointer[udpServer] // set while ServeUDP runs (udp.go)

	mu        sync.Mutex
	hubs      map[string]*hubState
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{} // connections not yet logged in
	closing   bool
	handlers  sync.WaitGroup // one per accepted connection
}

// settings are the config-wide values a login reads, swapped whole by Apply.
type settings struct {
	name       string
	listen     string
	cert       *tls.Certificate
	ticketKeys []auth.TicketKey
	randomKey  bool
	keepalive  time.Duration
	dead       time.Duration
	udpOff     bool // udpListen "off": no login is offered the UDP channel
}

// New builds a server from a validated or unvalidated cfg (it is validated here)
// and reads the files it names. Call Serve to accept sessions.
func New(cfg *Config, opts Options) (*Server, error) {
	s := &Server{
		log:       opts.Logger,
		now:       opts.Now,
		route:     opts.Route,
		relayTo:   opts.Relay,
		known:     opts.Known,
		borrow:    opts.Borrow,
		udpFwd:    opts.UDPForward,
		onSess:    opts.OnSessions,
		gate:      license.NewGate(license.Unlimited, license.Unlimited),
		hubs:      map[string]*hubState{},
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.Apply(cfg); err != nil {
		return nil, err
	}
	// The certificate is looked up per handshake so Apply can rotate it.
	s.tlsConf = protocol.ServerTLSConfig(tls.Certificate{}, nil)
	s.tlsConf.Certificates = nil
	s.tlsConf.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return s.settings.Load().cert, nil
	}
	s.setSessionTicketKeys(s.settings.Load())
	return s, nil
}

// Hub returns the switch of the hub named name served now, or nil. Cluster
// mode attaches static hubs' switches to the member mesh with it; a hub keeps
// its switch while it stays in the configuration, and Apply closes it when the
// hub goes, so detach it from anything else before applying its removal.
func (s *Server) Hub(name string) *hub.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hs := s.hubs[name]; hs != nil {
		return hs.sw
	}
	return nil
}

// Name is the member's name.
func (s *Server) Name() string { return s.settings.Load().name }

// Apply replaces the configuration. Hubs that remain keep their sessions; users and
// limits apply to new logins; a removed hub refuses logins at once and its
// sessions are sent Shutdown ("hub removed") in the background, so their clients
// log in again at once; the certificate, ticket key, licenses and timers are
// replaced (timers for new sessions). A change of listen address needs a restart
// and is only logged. On error nothing changes.
func (s *Server) Apply(cfg *Config) error {
	// A deep copy: the caller (a file reload, or informers in cluster mode) may
	// reuse its Config, and logins read it concurrently.
	c := *cfg
	c.Hubs = append([]HubConfig(nil), cfg.Hubs...)
	for i := range c.Hubs {
		c.Hubs[i].Users = maps.Clone(c.Hubs[i].Users)
	}
	if cfg.Licenses != nil {
		l := *cfg.Licenses
		c.Licenses = &l
	}
	if err := c.Validate(); err != nil {
		return err
	}
	m, err := c.loadFiles()
	if err != nil {
		return err
	}
	next := &settings{
		name: c.Name, listen: c.Listen, cert: &m.cert,
		keepalive: c.KeepaliveInterval.D(), dead: c.DeadTimeout.D(),
		udpOff: c.UDPListen == UDPOff,
	}
	prev := s.settings.Load()
	switch {
	case m.ticketKey != nil:
		next.ticketKeys = []auth.TicketKey{*m.ticketKey}
		// Keep accepting tickets made with the previous key through one rotation.
		if prev != nil && !prev.randomKey && prev.ticketKeys[0] != *m.ticketKey {
			next.ticketKeys = append(next.ticketKeys, prev.ticketKeys[0])
		}
	case prev != nil && prev.randomKey:
		next.ticketKeys, next.randomKey = prev.ticketKeys, true
	default:
		k, err := auth.NewTicketKey()
		if err != nil {
			return err
		}
		next.ticketKeys, next.randomKey = []auth.TicketKey{k}, true
		s.log.Warn("no ticketKeyFile: using a random resumption-ticket key, so tickets resume sessions on this process only; give every member the same ticketKeyFile")
	}
	if prev != nil && prev.listen != next.listen {
		s.log.Warn("listen address changed; it takes effect when the member restarts", "old", prev.listen, "new", next.listen)
	}

	var removed []*hubState
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	want := make(map[string]*HubConfig, len(c.Hubs))
	for i := range c.Hubs {
		h := &c.Hubs[i]
		want[h.Name] = h
		if hs, ok := s.hubs[h.Name]; ok {
			hs.update(h, s.log)
			continue
		}
		hs := newHubState(h, s.now, s.log, s.onSess)
		s.hubs[h.Name] = hs
		s.log.Info("hub added", "hub", h.Name, "type", h.Type, "users", len(h.Users))
	}
	for name, hs := range s.hubs {
		if _, ok := want[name]; !ok {
			delete(s.hubs, name)
			removed = append(removed, hs)
		}
	}
	s.settings.Store(next)
	if s.tlsConf != nil { // nil only in New's first Apply; New sets the keys itself
		s.setSessionTicketKeys(next)
	}
	if c.Licenses == nil {
		s.gate.SetAllocation(license.Unlimited, license.Unlimited)
	} else {
		s.gate.SetAllocation(c.Licenses.Client, c.Licenses.Bridge)
	}
	s.mu.Unlock()

	for _, hs := range removed {
		// In the background: telling a client that reads nothing can take up to
		// the write timeout, and Apply must not stall the reload behind it.
		go func() {
			n := hs.remove("hub removed")
			s.log.Info("hub removed", "hub", hs.name, "sessions_shut_down", n)
		}()
	}
	return nil
}

// setSessionTicketKeys gives the TLS listener session-ticket keys derived from the
// cluster's resumption-ticket keys, current first: TLS sessions then resume on any
// member (the expensive half of a reconnect), and rotating the ticket key rotates
// them too, the previous key still accepted through one rotation.
func (s *Server) setSessionTicketKeys(st *settings) {
	keys := make([][32]byte, len(st.ticketKeys))
	for i, k := range st.ticketKeys {
		keys[i] = protocol.SessionTicketKey(k)
	}
	s.tlsConf.SetSessionTicketKeys(keys)
}

// Serve accepts connections on ln (raw TCP; TLS is done here) until Shutdown,
// then returns ErrServerClosed. It may be called for several listeners.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.log.Info("listening on "+ln.Addr().String(), "member", s.Name())
	var backoff time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			delete(s.listeners, ln)
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || isTemporary(err) {
				// As net/http: a temporary failure (out of file descriptors) must not
				// end the listener; back off and try again.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				s.mu.Lock()
				s.listeners[ln] = struct{}{}
				s.mu.Unlock()
				continue
			}
			return fmt.Errorf("accepting on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		if !s.track(raw) {
			raw.Close()
			continue
		}
		go s.handle(raw)
	}
}

// track registers a connection in login; false once closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.handlers.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, drops connections that have not finished logging in, sends
// every session Shutdown ("member shutting down") so its client logs in elsewhere
// at once, and waits for the sessions to end. When ctx ends first, the remaining
// connections are closed hard and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	// Connections still in the handshake or login hold nothing yet; a client
	// that sees its connection drop reconnects as it would on ShuttingDown, and
	// waiting up to the 10 s login timeout for a silent one would stall the exit.
	for c := range s.conns {
		c.Close()
	}
	hubs := make([]*hubState, 0, len(s.hubs))
	for _, hs := range s.hubs {
		hubs = append(hubs, hs)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, hs := range hubs {
		wg.Go(func() { hs.remove("member shutting down") })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	for _, hs := range hubs {
		hs.forceClose()
	}
	return ctx.Err()
}

// Stats is a snapshot of the member's sessions and hubs.
type Stats struct {
	Name     string       `json:"name"`
	Sessions int          `json:"sessions"`
	Clients  int          `json:"clients"`
	Bridges  int          `json:"bridges"`
	Licenses LicenseStats `json:"licenses"`
	Hubs     []HubStats   `json:"hubs"` // sorted by name
}

// LicenseStats are the member's allocation (-1: unlimited) and licenses in use.
type LicenseStats struct {
	// ClientAllocation and BridgeAllocation are what the member admits up
	// to, loans included (license.Gate.Effective).
	ClientAllocation int `json:"clientAllocation"`
	BridgeAllocation int `json:"bridgeAllocation"`
	ClientInUse      int `json:"clientInUse"`
	BridgeInUse      int `json:"bridgeInUse"`
	// Own is the allocation the operator gave the member, loans left out;
	// Lent what it lent of it to peers. Its Lease reports these.
	ClientOwn  int `json:"clientOwn"`
	BridgeOwn  int `json:"bridgeOwn"`
	ClientLent int `json:"clientLent"`
	BridgeLent int `json:"bridgeLent"`
}

// HubStats are one hub's sessions by kind and its switch counters.
type HubStats struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Clients int       `json:"clients"`
	Bridges int       `json:"bridges"`
	Switch  hub.Stats `json:"switch"`
}

// Gate is the member's license gate (the cluster member lends from it and
// adds what it borrows).
func (s *Server) Gate() *license.Gate { return s.gate }

// Licenses returns the allocation and the licenses in use without walking the
// hubs: the cluster member's routing reads it on every login. In-use counts
// every session, limited or not, so it is also the member's session count.
func (s *Server) Licenses() LicenseStats {
	f := s.gate.Figures()
	c, b := sessionkind.Client, sessionkind.Bridge
	return LicenseStats{
		ClientAllocation: f.Effective(c), BridgeAllocation: f.Effective(b),
		ClientInUse: f.InUse[c], BridgeInUse: f.InUse[b],
		ClientOwn: f.Alloc[c], BridgeOwn: f.Alloc[b],
		ClientLent: f.Lent[c], BridgeLent: f.Lent[b],
	}
}

// Stats returns a snapshot.
func (s *Server) Stats() Stats {
	st := Stats{Name: s.Name(), Licenses: s.Licenses()}
	s.mu.Lock()
	hubs := make([]*hubState, 0, len(s.hubs))
	for _, hs := range s.hubs {
		hubs = append(hubs, hs)
	}
	s.mu.Unlock()
	for _, hs := range hubs {
		hs.mu.Lock()
		h := HubStats{Name: hs.name, Type: hs.cfg.Type, Clients: hs.running[sessionkind.Client], Bridges: hs.running[sessionkind.Bridge]}
		hs.mu.Unlock()
		h.Switch = hs.sw.Stats()
		st.Clients += h.Clients
		st.Bridges += h.Bridges
		st.Hubs = append(st.Hubs, h)
	}
	st.Sessions = st.Clients + st.Bridges
	sort.Slice(st.Hubs, func(i, j int) bool { return st.Hubs[i].Name < st.Hubs[j].Name })
	return st
}
