// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/license"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// maxFrame is the largest ordinary frame a session may negotiate: a 1500-byte
// MTU frame with two VLAN tags and headroom (protocol.DefaultMaxFrame). It keeps
// every ordinary frame in the hub's 2 KiB buffer pool; super-frames from CapGSO
// sessions take 64 KiB buffers and are bounded by protocol.MaxSuperFrame.
const maxFrame = protocol.DefaultMaxFrame

// handle runs one accepted connection: TLS, login, then the session (or a
// relay to the member that holds the hub).
func (s *Server) handle(raw net.Conn) {
	protocol.TuneTCP(raw)
	tc := tls.Server(protocol.WrapTCP(raw), s.tlsConf)
	ctx, cancel := context.WithTimeout(context.Background(), protocol.LoginTimeout)
	remote := tc.RemoteAddr().String()
	var se *session
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Debug("TLS handshake failed", "remote", remote, "err", err)
	} else if req, err := protocol.ReadLogin(tc); err != nil {
		if le, ok := errors.AsType[*protocol.LoginError](err); ok {
			s.refuse(tc, remote, nil, le.Result())
		} else {
			s.log.Debug("reading login failed", "remote", remote, "err", err)
		}
	} else if req.Relayed {
		// Only mTLS peers on the mesh port may state the relay fields
		// (ServeRelayed); a client must never claim another entry or address.
		s.refuse(tc, remote, req, refusal(protocol.BadRequest, "member %s accepts relayed logins only over the member mesh; clients must not set the relay fields", s.Name()))
	} else if len(req.HandoffToken) > 0 {
		s.refuse(tc, remote, req, refusal(protocol.BadRequest, "member %s accepts a handoff login only on a connection an entry member handed over; clients must not send a handoff token of their own", s.Name()))
	} else if peer, ok := s.routeElsewhere(req); ok {
		// The connection stays tracked for the relay's life, so Shutdown
		// closes it and the client reconnects (to another member) at once.
		if s.relay(ctx, peer, req, tc, remote) {
			se = s.login(ctx, raw, tc, remote, req)
		}
	} else {
		se = s.login(ctx, raw, tc, remote, req)
	}
	cancel()
	s.start(raw, tc, se)
}

// start runs an admitted session, or releases a connection that got none. It
// ends the handler that track began.
func (s *Server) start(raw, conn net.Conn, se *session) {
	if se == nil {
		s.untrack(raw)
		conn.Close()
		s.handlers.Done()
		return
	}
	// login untracked the connection before sending OK. If the hub was removed (or
	// the member began shutting down) since, the client is told why at once.
	if reason, ok := se.hs.register(se); !ok {
		se.abandon()
		_ = se.conn.WriteShutdown(reason)
		se.conn.Close()
		s.handlers.Done()
		return
	}
	// The session reads on a new goroutine: this one's stack grew deep in the
	// TLS handshake, and an idle session would keep that memory.
	go func() {
		defer s.handlers.Done()
		se.run()
	}()
}

// routeElsewhere asks Options.Route whether a login goes to another member:
// a hub this member does not serve, or a static hub it serves but another
// member should take (full, out of licenses, clearly less loaded). Relayed
// logins are never routed again: the entry already chose this member, and a
// second hop could loop between members with stale views.
func (s *Server) routeElsewhere(req *protocol.LoginRequest) (string, bool) {
	if s.route == nil || s.relayTo == nil || req.Relayed {
		return "", false
	}
	s.mu.Lock()
	hs, here := s.hubs[req.Hub]
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return "", false
	}
	if here {
		hs.mu.Lock()
		static := hs.cfg.Type == HubStatic
		hs.mu.Unlock()
		if !static {
			return "", false
		}
	}
	return s.route(req)
}

// ErrRelayUnreachable wraps an Options.Relay error returned before the client
// was sent any result (the owner could not be reached): the member then
// answers the client itself.
var ErrRelayUnreachable = errors.New("member: relay target unreachable")

// ErrServeHere is returned by Options.Relay, before the client was sent
// anything, when the hub moved to this member while its owner was being
// reached (the owner died): the member serves the login itself.
var ErrServeHere = errors.New("member: the hub moved here while relaying")

// relay hands a login for a hub held by member peer to Options.Relay, which
// forwards the owner's result and splices the session until it ends. It
// returns true when the login is to be served here after all.
func (s *Server) relay(ctx context.Context, peer string, req *protocol.LoginRequest, tc *tls.Conn, remote string) bool {
	s.log.Info("relaying session", "remote", remote, "hub", req.Hub, "user", req.User, "to", peer)
	s.relaying.Add(1)
	err := s.relayTo(ctx, peer, *req, tc)
	s.relaying.Add(-1)
	if errors.Is(err, ErrServeHere) {
		s.log.Info("relay target gone and the hub moved here: serving the login", "remote", remote, "hub", req.Hub, "was", peer)
		return true
	}
	if errors.Is(err, ErrRelayUnreachable) {
		// Internal, not UnknownHub: the hub exists, and the client's retry may
		// land on a member that reaches the owner (or on the owner itself).
		s.refuse(tc, remote, req, refusal(protocol.Internal, "hub %q is held by member %s, which member %s cannot reach now; try again", req.Hub, peer, s.Name()))
		return false
	}
	s.log.Info("relayed session ended", "remote", remote, "hub", req.Hub, "user", req.User, "to", peer, "err", err)
	return false
}

// ServeRelayed runs a session another member relayed here over the member mesh
// (mesh.OnRelayedSession): conn is positioned right after the Login req. It is
// the normal login path minus the TLS handshake: the owner authenticates again
// (the relayed login carries the user's password or ticket), applies hub limits
// and licenses, answers, and runs the session. Only hubs served here now are
// accepted, so a fenced member, which no longer serves its dynamic hubs, refuses
// their relayed sessions too; a relayed login is never relayed again. It
// returns once the session has started (or was refused).
func (s *Server) ServeRelayed(req *protocol.LoginRequest, conn net.Conn) {
	if !s.track(conn) {
		_ = protocol.WriteResult(conn, refusal(protocol.ShuttingDown, "member %s is shutting down: log in again and the cluster sends you to another member", s.Name()))
		conn.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), protocol.LoginTimeout)
	remote := req.RelayClientAddr + " via " + req.RelayEntry
	if mtls, ok := handsOff(req, conn); ok {
		se, sc := s.loginHandoff(ctx, mtls, remote, req)
		cancel()
		s.start(conn, sc, se)
		return
	}
	req.HandoffToken = nil
	se := s.login(ctx, conn, conn, remote, req)
	cancel()
	s.start(conn, conn, se)
}

// login runs the login exchange for req, read from conn (tracked as raw), and
// returns the admitted session, or nil after sending the refusal (or on a broken
// connection).
func (s *Server) login(ctx context.Context, raw, conn net.Conn, remote string, req *protocol.LoginRequest) *session {
	se, res := s.admitAttached(ctx, conn, remote, req)
	if se == nil {
		return nil
	}
	// From here Shutdown must not close the connection under the OK result: the
	// session reaches it through its hub instead (register in start).
	s.untrack(raw)
	if se.hs.rate.Load() == nil {
		// A rate-limited session stays on TLS: its ingress is paced by
		// reading TLS slower (userlimits.go), which datagrams cannot be.
		s.offerUDP(conn, req, se, res)
	}
	if err := protocol.WriteResult(conn, res); err != nil {
		s.log.Info("login admitted but the result could not be sent", "remote", remote, "hub", req.Hub, "err", err)
		se.abandon()
		return nil
	}
	s.logins.count(protocol.OK)
	se.conn = protocol.NewConn(conn, res.ConnConfig())
	return se
}

// admitAttached admits req (admit) and attaches the session's port to its
// hub, so a frame another session sends once this client is "in" reaches it;
// what fails is refused on conn, and nil returned.
func (s *Server) admitAttached(ctx context.Context, conn net.Conn, remote string, req *protocol.LoginRequest) (*session, *protocol.LoginResult) {
	se, res := s.admit(ctx, req)
	if se == nil {
		s.refuse(conn, remote, req, res)
		return nil, nil
	}
	se.label = req.User + "@" + remote
	se.remote = remote
	se.since = s.now()
	if !se.hs.attach(se) {
		se.hs.unreserve(se.kind, se.user)
		s.gate.Release(se.kind)
		s.refuse(conn, remote, req, s.notHere(req.Hub, s.Name(), "was just removed from"))
		return nil, nil
	}
	return se, res
}

// abandon undoes an attached session that never started: its port, its
// place in the hub and its license.
func (se *session) abandon() {
	se.port.Close()
	se.hs.drop(se)
	se.srv.gate.Release(se.kind)
}

func (s *Server) refuse(tc net.Conn, remote string, req *protocol.LoginRequest, res *protocol.LoginResult) {
	attrs := []any{"remote", remote, "code", res.Code.String(), "message", res.Message}
	if req != nil {
		attrs = append(attrs, "hub", req.Hub, "user", req.User, "kind", req.Kind, "client", req.ClientName)
	}
	s.log.Info("login refused", attrs...)
	s.logins.count(res.Code)
	if err := protocol.WriteResult(tc, res); err != nil {
		s.log.Debug("sending the refusal failed", "remote", remote, "err", err)
	}
}

// notHere refuses a login for a hub this member does not serve: UnknownHub
// when, as far as Options.Known can tell, the cluster has no such hub, and
// NotServedHere (retried by clients) when it exists but is not served here
// right now. what says how the hub is missing ("does not exist on", "was just
// removed from").
func (s *Server) notHere(hub, member, what string) *protocol.LoginResult {
	if s.known != nil && s.known(hub) {
		return refusal(protocol.NotServedHere, "hub %q exists but member %s does not serve it right now (it is being placed or moved, or this member cannot renew its Lease); try again", hub, member)
	}
	if what == "does not exist on" {
		return refusal(protocol.UnknownHub, "hub %q does not exist on member %s: check the hub name, or ask your administrator whether the hub was created", hub, member)
	}
	return refusal(protocol.UnknownHub, "hub %q was just removed from member %s: ask your administrator whether it still exists", hub, member)
}

func refusal(code protocol.Code, format string, args ...any) *protocol.LoginResult {
	return &protocol.LoginResult{Code: code, Message: fmt.Sprintf(format, args...)}
}

// admit decides a login: hub, credentials, hub capacity, license — in that order,
// so a client learns about a mistyped hub before a capacity problem. On success
// the session holds a hub reservation and a license, and res is the OK result.
func (s *Server) admit(ctx context.Context, req *protocol.LoginRequest) (*session, *protocol.LoginResult) {
	st := s.settings.Load()
	s.mu.Lock()
	closing := s.closing
	hs := s.hubs[req.Hub]
	s.mu.Unlock()
	if closing {
		return nil, refusal(protocol.ShuttingDown, "member %s is shutting down: log in again and the cluster sends you to another member", st.name)
	}
	if hs == nil {
		return nil, s.notHere(req.Hub, st.name, "does not exist on")
	}
	cred, res := s.authenticate(ctx, st, hs, req)
	if res != nil {
		return nil, res
	}
	kind := req.SessionKind()
	limit, err := hs.reserve(kind, req.User)
	switch {
	case errors.Is(err, errHubGone):
		return nil, s.notHere(req.Hub, st.name, "was just removed from")
	case errors.Is(err, errUserLimit):
		return nil, refusal(protocol.UserSessionLimit, "%s", userLimitRefusal(req.User, req.Hub, st.name, limit))
	case err != nil:
		return nil, refusal(protocol.HubFull, "hub %q is full: %d of %d sessions (maxSessions) in use; try again later or ask your administrator to raise maxSessions", req.Hub, limit, limit)
	}
	err = s.gate.Acquire(kind)
	if errors.Is(err, license.ErrExhausted) && s.borrow != nil && s.borrow(ctx, kind) {
		err = s.gate.Acquire(kind) // a peer lent one
	}
	if err != nil {
		hs.unreserve(kind, req.User)
		var ee *license.ExhaustedError
		if errors.As(err, &ee) && s.borrow != nil {
			return nil, refusal(protocol.LicenseExhausted, "license exhausted: every %s connection license of the cluster is in use (member %s: %d of %d, and no peer has one free); try again later or ask your administrator for more %s licenses", ee.Kind, st.name, ee.InUse, ee.Allocation, ee.Kind)
		}
		if errors.As(err, &ee) {
			return nil, refusal(protocol.LicenseExhausted, "license exhausted: no %s connection license free on member %s (%d of %d in use); try again later or ask your administrator for more %s licenses", ee.Kind, st.name, ee.InUse, ee.Allocation, ee.Kind)
		}
		return nil, refusal(protocol.Internal, "member %s: %v", st.name, err)
	}
	se := &session{srv: s, hs: hs, kind: kind, user: req.User, cred: cred}
	now := s.now()
	ticket, expiry, err := s.ticket(st, req, &se.id, cred, now)
	if err != nil {
		hs.unreserve(kind, req.User)
		s.gate.Release(kind)
		s.log.Error("issuing a resumption ticket failed", "err", err)
		return nil, refusal(protocol.Internal, "member %s could not issue a resumption ticket; try again", st.name)
	}
	mf := maxFrame
	if req.MaxFrame > 0 {
		mf = min(mf, req.MaxFrame)
	}
	return se, &protocol.LoginResult{
		Code: protocol.OK, Version: req.NegotiatedVersion(),
		SessionID: se.id, Ticket: ticket, TicketExpiry: expiry,
		KeepaliveInterval: st.keepalive, DeadPeerTimeout: st.dead, MaxFrame: mf,
		// The session writer segments super-frames for clients without GSO,
		// so offering it to every client that asks costs the others nothing.
		Capabilities: req.Capabilities & protocol.CapGSO,
	}
}

func (s *Server) ticket(st *settings, req *protocol.LoginRequest, id *[16]byte, cred auth.Credential, now time.Time) ([]byte, time.Time, error) {
	if _, err := rand.Read(id[:]); err != nil {
		return nil, time.Time{}, err
	}
	c := auth.TicketClaims{User: req.User, Hub: req.Hub, Kind: req.Kind, SessionID: *id, Credential: cred,
		Expiry: now.Add(auth.DefaultTicketTTL).Truncate(time.Millisecond)}
	t, err := auth.IssueTicket(st.ticketKeys[0], c, now)
	return t, c.Expiry, err
}

// authenticate checks the login's credential and returns the stored
// password it proved (auth.CredentialDigest: the session ends, and its
// tickets stop working, when an administrator changes it), or a refusal.
func (s *Server) authenticate(ctx context.Context, st *settings, hs *hubState, req *protocol.LoginRequest) (auth.Credential, *protocol.LoginResult) {
	phc, known := hs.userHash(req.User)
	cred := auth.CredentialDigest(phc)
	switch {
	case len(req.Ticket) > 0:
		claims, err := auth.VerifyTicket(st.ticketKeys, req.Ticket, s.now())
		if err == nil {
			err = claims.Check(req.User, req.Hub, req.Kind, cred)
		}
		switch {
		case err != nil && !errors.Is(err, auth.ErrTicketCredential):
			return cred, refusal(protocol.BadCredentials, "%v", err)
		case !known:
			return cred, refusal(protocol.BadCredentials, "user %q no longer exists on hub %q: ask your administrator", req.User, req.Hub)
		case err != nil:
			return cred, refusal(protocol.BadCredentials, "the password of user %q on hub %q was changed after this session started: log in with the new password", req.User, req.Hub)
		}
		return cred, nil
	case req.Password != "":
		if !known {
			// Spend the same time as for a known user, so timing does not tell
			// which user names exist.
			phc = dummyHash()
		}
		ok, err := s.verifyPassword(ctx, phc, req.Password)
		if err != nil {
			if ctx.Err() != nil {
				return cred, refusal(protocol.Internal, "member %s is too busy checking passwords; try again", st.name)
			}
			s.log.Error("a user's password hash cannot be checked: fix it in the hub's users", "hub", req.Hub, "user", req.User, "err", err)
			return cred, refusal(protocol.Internal, "the password hash stored for user %q on hub %q is broken: ask your administrator to set it again", req.User, req.Hub)
		}
		if !ok || !known {
			return cred, refusal(protocol.BadCredentials, "wrong user name or password for hub %q", req.Hub)
		}
		return cred, nil
	}
	return cred, refusal(protocol.BadCredentials, "no password or ticket: member %s does not accept client-certificate logins; log in with a password", st.name)
}

// verifyPassword runs argon2id on the process's verification pool, which is
// smaller than GOMAXPROCS so a wrong-password storm leaves forwarding a core,
// and which returns the storm's memory when it ends (auth.Verifier).
func (s *Server) verifyPassword(ctx context.Context, phc, password string) (bool, error) {
	return auth.VerifyPasswordContext(ctx, phc, password)
}

// dummyHash is a valid hash of a password nobody knows, with the default cost.
var dummyHash = sync.OnceValue(func() string {
	var pw [32]byte
	_, _ = rand.Read(pw[:])
	h, err := auth.HashPassword(fmt.Sprintf("%x", pw))
	if err != nil {
		panic("member: hashing a random password: " + err.Error())
	}
	return h
})
