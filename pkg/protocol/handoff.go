// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net"
)

// Session handoff (CapHandoff; docs/protocol.md, "Handoff").
//
// A client reaches the cluster through a Service, so its connection often
// lands on a member that does not hold its hub (the entry), which relays the
// login to the hub's owner over the member mesh. Relaying frames costs the
// entry a TLS decryption and an encryption of every byte, and the owner one
// more decryption: two of the path's four AES-GCM passes are added, and on a
// busy cluster the relayed session moved 0.57–0.68 of a direct one. With
// CapHandoff the relay carries the login only:
//
//  1. The client offers CapHandoff. The entry puts a fresh random token in
//     the relayed login (HandoffToken) and sends it over the mesh (mTLS).
//  2. The owner authenticates and admits the login as any relayed one, and
//     answers OK with CapHandoff and the token. From then on it stops using
//     the mesh TLS session and waits, on the same TCP connection, for a new
//     TLS handshake.
//  3. The entry forwards that result to the client over the client's TLS
//     session, then copies bytes between the two TCP connections without
//     looking at them (splice(2)).
//  4. The client abandons its first TLS session, runs a new handshake on the
//     same TCP connection — which the entry's byte copy carries to the owner
//     — and logs in with the token only. The owner checks the token and
//     answers with the session's final result; the session then runs end to
//     end between client and owner, its UDP keys exported from that TLS
//     session as for a direct one.
//
// No side sends a byte after its last login message until the other side
// has moved on (the login exchange is strictly request then answer, and the
// login messages are read with exact-length reads), so neither TLS layer
// has buffered anything of the next one when it is dropped. The token binds
// the new TLS session to the login the owner admitted: it travels only
// inside TLS (client–entry) and mTLS (entry–owner), so whoever could inject
// bytes into the unencrypted entry–owner TCP connection cannot complete the
// second login. The client verifies the owner's certificate as it verified
// the entry's: every member serves the cluster's certificate.

// tagHandoffToken is the handoff token's field in the Login (relayed and
// handoff logins) and in the OK LoginResult with CapHandoff.
const tagHandoffToken = 13

// HandoffTokenLen is the length of a handoff token.
const HandoffTokenLen = 32

// NewHandoffToken returns a fresh random handoff token.
func NewHandoffToken() ([]byte, error) {
	t := make([]byte, HandoffTokenLen)
	if _, err := rand.Read(t); err != nil {
		return nil, err
	}
	return t, nil
}

// checkHandoff: a result granting CapHandoff must carry the token the client
// presents next.
func checkHandoff(r *LoginResult) error {
	if r.Code != OK || r.Capabilities&CapHandoff == 0 {
		return nil
	}
	if len(r.HandoffToken) != HandoffTokenLen {
		return fmt.Errorf("CapHandoff granted with a handoff token of %d bytes, want %d", len(r.HandoffToken), HandoffTokenLen)
	}
	return nil
}

// handOver is the client's side of step 4: a new TLS handshake on first's
// TCP connection and the login with the token. It returns the new TLS
// connection and the session's result.
func handOver(ctx context.Context, first *tls.Conn, conf *tls.Config, req LoginRequest, res *LoginResult) (*tls.Conn, *LoginResult, error) {
	raw := first.NetConn()
	hctx, cancel := context.WithTimeoutCause(ctx, HandshakeTimeout, ErrNoAnswer)
	defer cancel()
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("TLS handshake with the hub's member through %s (handoff): %w", raw.RemoteAddr(), noAnswer(hctx, ctx, err))
	}
	next := LoginRequest{
		Version: req.Version, MinVersion: req.MinVersion,
		Hub: req.Hub, User: req.User, Kind: req.Kind, ClientName: req.ClientName, MaxFrame: req.MaxFrame,
		Capabilities: req.Capabilities &^ CapHandoff,
		HandoffToken: res.HandoffToken,
	}
	final, err := Login(ctx, tc, next)
	if err != nil {
		tc.Close()
		return nil, final, err
	}
	if final.SessionID != res.SessionID {
		tc.Close()
		return nil, nil, protoErr("the handed-off session has ID %x, the relayed login admitted %x", final.SessionID, res.SessionID)
	}
	return tc, final, nil
}

// AcceptHandoff is the owner's side of steps 2 and 4, after it sent the OK
// result with CapHandoff on conn (the mesh's mTLS connection, which is left
// unused): it runs the server handshake with conf on conn's TCP connection
// and reads the client's handoff login, which must carry token and name the
// same hub, user and kind as the relayed login admitted. A mismatched login
// comes back as a *LoginError to send on the returned connection.
func AcceptHandoff(ctx context.Context, conn *tls.Conn, conf *tls.Config, admitted *LoginRequest) (*tls.Conn, *LoginRequest, error) {
	tc := tls.Server(conn.NetConn(), conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("TLS handshake of a handed-off session: %w", err)
	}
	req, err := ReadLogin(tc)
	if err != nil {
		return tc, nil, err
	}
	switch {
	case len(req.HandoffToken) == 0 || subtle.ConstantTimeCompare(req.HandoffToken, admitted.HandoffToken) != 1:
		return tc, req, badRequest("the handoff login does not carry the token of the login this member admitted")
	case req.Hub != admitted.Hub || req.User != admitted.User || req.Kind != admitted.Kind:
		return tc, req, badRequest("the handoff login names hub %q user %q, the admitted login hub %q user %q", req.Hub, req.User, admitted.Hub, admitted.User)
	}
	return tc, req, nil
}

// SpliceTarget is the connection a handoff's byte copy reads and writes:
// the TCP connection under c's TLS and under WrapTCP, so the copy can use
// splice(2) (net.TCPConn.ReadFrom) and never enters user space.
func SpliceTarget(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if u, ok := c.(interface{ tcpConn() *net.TCPConn }); ok {
		return u.tcpConn()
	}
	return c
}
