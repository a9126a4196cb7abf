// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// Handed-off sessions, the owner's side (protocol/handoff.go has the whole
// exchange). A relayed login whose client offered CapHandoff is admitted as
// any relayed login; then, instead of running the session inside the mesh's
// mTLS connection, which the entry would have to decrypt and re-encrypt
// frame by frame, the owner answers with CapHandoff and runs a TLS session
// of its own with the client on the same TCP connection. The entry then
// only copies bytes.

// handsOff tells whether a relayed login, read from conn, is to be handed
// off: the client offered CapHandoff, the entry sent a token, and conn is
// the mesh's TLS connection whose TCP connection can carry the client's own
// TLS (the in-process stand-ins of tests are not).
func handsOff(req *protocol.LoginRequest, conn net.Conn) (*tls.Conn, bool) {
	if req.Capabilities&protocol.CapHandoff == 0 || len(req.HandoffToken) != protocol.HandoffTokenLen {
		return nil, false
	}
	tc, ok := conn.(*tls.Conn)
	return tc, ok
}

// loginHandoff admits the relayed login req read from mtls, hands the
// connection over and returns the session and the connection it runs on;
// nil and the connection to close when the login was refused or the
// handoff failed.
func (s *Server) loginHandoff(ctx context.Context, mtls *tls.Conn, remote string, req *protocol.LoginRequest) (*session, net.Conn) {
	// An entry sends the keys it exported for an owner that cannot hand
	// off; this session's keys come from its own TLS session.
	clear(req.RelayUDPKeys)
	se, res := s.admitAttached(ctx, mtls, remote, req)
	if se == nil {
		return nil, mtls
	}
	abandon := func(what string, err error) {
		s.log.Info("handoff of a relayed session failed", "remote", remote, "hub", req.Hub, "step", what, "err", err)
		se.abandon()
	}
	res.Capabilities |= protocol.CapHandoff
	res.HandoffToken = req.HandoffToken
	if err := protocol.WriteResult(mtls, res); err != nil {
		abandon("sending the result to the entry", err)
		return nil, mtls
	}
	// The mesh TLS session ends here, without close_notify: the next bytes
	// on its TCP connection are the client's ClientHello.
	tc, hreq, err := protocol.AcceptHandoff(ctx, mtls, s.tlsConf, req)
	if err != nil {
		abandon("the client's handshake and login", err)
		if le, ok := errors.AsType[*protocol.LoginError](err); ok && tc != nil {
			s.refuse(tc, remote, hreq, le.Result())
		}
		if tc != nil {
			return nil, tc
		}
		return nil, mtls.NetConn()
	}
	final := *res
	final.Capabilities = res.Capabilities &^ protocol.CapHandoff & hreq.Capabilities
	final.HandoffToken = nil
	// As in login: from here Shutdown reaches the session through its hub.
	s.untrack(mtls)
	if se.hs.rate.Load() == nil {
		// The UDP keys come from the client's own TLS session with this
		// member, as for a direct login (hreq is not a relayed login).
		s.offerUDP(tc, hreq, se, &final)
	}
	if err := protocol.WriteResult(tc, &final); err != nil {
		abandon("sending the final result", err)
		return nil, tc
	}
	s.logins.count(protocol.OK)
	s.handoffs.Add(1)
	se.conn = protocol.NewConn(tc, final.ConnConfig())
	return se, tc
}
