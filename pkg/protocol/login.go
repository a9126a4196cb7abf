// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// LoginRequest is the client's first message. Exactly one credential is used: a
// Ticket if set, else a Password if set, else the TLS client certificate.
type LoginRequest struct {
	// Version is the highest protocol version the client speaks and MinVersion the
	// lowest; zero means this package's Version and MinVersion.
	Version, MinVersion uint16
	Hub                 string
	User                string
	Password            string
	// Ticket is a resumption ticket from an earlier LoginResult.
	Ticket []byte
	// Kind is the wire byte of the session kind, KindClient or KindBridge;
	// SessionKind reads it as a sessionkind.Kind.
	Kind uint8
	// ClientName is free text for logs, such as "hubfleet-connect/0.3.0 linux/amd64".
	ClientName string
	// MaxFrame is the largest frame the client wants to exchange; zero means
	// DefaultMaxFrame. The server may lower it.
	MaxFrame int
	// Relayed marks a login an entry member forwards, over the member mesh, to the
	// member that holds the hub; RelayEntry names the entry member and
	// RelayClientAddr is the client's address as the entry member saw it.
	Relayed         bool
	RelayEntry      string
	RelayClientAddr string
	// RelayUDPKeys (relayed logins only) are the UDP data channel's keys of
	// the first epochs, exported by the entry from the client's TLS session
	// (datagram.EpochKeys), so the owner can run the session's UDP channel.
	// Secret: sent only over the member mesh, never logged.
	RelayUDPKeys []byte
	// Capabilities the client offers (CapGSO, …). A relaying entry member
	// forwards them unchanged: the session runs end to end with the owner.
	Capabilities uint32
	// HandoffToken (HandoffTokenLen bytes, handoff.go) is set by an entry
	// member in a relayed login that may be handed off, and by the client in
	// the login it sends the owner over the handed-off connection. Secret.
	HandoffToken []byte
}

// String leaves the credentials out, so a request can be logged.
func (r LoginRequest) String() string {
	cred := "client certificate"
	switch {
	case len(r.Ticket) > 0:
		cred = "ticket"
	case r.Password != "":
		cred = "password"
	}
	s := fmt.Sprintf("login hub=%q user=%q kind=%d auth=%s client=%q", r.Hub, r.User, r.Kind, cred, r.ClientName)
	if r.Relayed {
		s += fmt.Sprintf(" relayed-from=%q client-addr=%q", r.RelayEntry, r.RelayClientAddr)
	}
	if r.Capabilities != 0 {
		s += fmt.Sprintf(" capabilities=%#x", r.Capabilities)
	}
	return s
}

// SessionKind is the request's kind; every request Login sends and ReadLogin
// returns passed validation, so it is a valid one.
func (r *LoginRequest) SessionKind() sessionkind.Kind { return sessionkind.Kind(r.Kind) }

// NegotiatedVersion is the highest version both this package and the request
// support, or 0 if there is none.
func (r *LoginRequest) NegotiatedVersion() uint16 {
	v := min(r.Version, Version)
	if v < max(r.MinVersion, MinVersion) {
		return 0
	}
	return v
}

// invalid says what is wrong with r, or "" if nothing is.
func (r *LoginRequest) invalid() string {
	switch {
	case r.Hub == "":
		return "hub name missing"
	case !r.SessionKind().Valid():
		return fmt.Sprintf("session kind %d is neither client (%d) nor bridge (%d)", r.Kind, KindClient, KindBridge)
	case r.Password != "" && len(r.Ticket) > 0:
		return "both a password and a ticket: send one credential"
	case r.User == "" && (r.Password != "" || len(r.Ticket) > 0):
		return "user name missing"
	case r.MaxFrame != 0 && (r.MaxFrame < 64 || r.MaxFrame > MaxFrameLimit):
		return fmt.Sprintf("max frame %d outside 64..%d", r.MaxFrame, MaxFrameLimit)
	case len(r.Hub) > maxName || len(r.User) > maxName || len(r.ClientName) > maxName ||
		len(r.RelayEntry) > maxName || len(r.RelayClientAddr) > maxName:
		return fmt.Sprintf("a name is longer than %d bytes", maxName)
	case len(r.Password) > maxPassword:
		return fmt.Sprintf("password longer than %d bytes", maxPassword)
	case len(r.Ticket) > maxTicket:
		return fmt.Sprintf("ticket longer than %d bytes", maxTicket)
	case len(r.RelayUDPKeys) > 0 && !r.Relayed:
		return "relayed UDP keys in a login that is not relayed"
	case len(r.RelayUDPKeys)%relayUDPKeyLen != 0 || len(r.RelayUDPKeys) > maxRelayUDPKeys:
		return fmt.Sprintf("relayed UDP keys of %d bytes: want whole epochs of %d bytes, at most %d", len(r.RelayUDPKeys), relayUDPKeyLen, maxRelayUDPKeys)
	}
	return r.invalidHandoff()
}

func (r *LoginRequest) invalidHandoff() string {
	switch {
	case len(r.HandoffToken) == 0:
	case len(r.HandoffToken) != HandoffTokenLen:
		return fmt.Sprintf("handoff token of %d bytes, want %d", len(r.HandoffToken), HandoffTokenLen)
	case r.Relayed && r.Capabilities&CapHandoff == 0:
		return "a relayed login with a handoff token must offer CapHandoff"
	case !r.Relayed && (r.Password != "" || len(r.Ticket) > 0):
		return "a handoff login carries the token, not a password or ticket"
	}
	return ""
}

// LoginResult is the server's answer to a login.
type LoginResult struct {
	Code    Code
	Message string
	// Version is the protocol version the session speaks.
	Version      uint16
	RedirectAddr string
	// The fields below are only sent with Code OK.
	SessionID [16]byte
	// Ticket lets the client log in again, on any member, until TicketExpiry.
	Ticket            []byte
	TicketExpiry      time.Time
	KeepaliveInterval time.Duration
	DeadPeerTimeout   time.Duration
	MaxFrame          int
	// Capabilities is the subset of the request's Capabilities the server
	// accepted; both sides then use them.
	Capabilities uint32
	// UDP is set with CapUDP: where and how to send datagrams (udpcap.go).
	UDP *UDPParams
	// HandoffToken is set with CapHandoff: the client presents it to the
	// owner in the login after the new handshake (handoff.go). Secret.
	HandoffToken []byte
	// ServerMinVersion and ServerMaxVersion are sent with VersionUnsupported.
	ServerMinVersion, ServerMaxVersion uint16
}

// Err is nil for OK and the refusal as a *LoginError otherwise.
func (r *LoginResult) Err() error {
	if r.Code == OK {
		return nil
	}
	return &LoginError{Code: r.Code, Message: r.Message, RedirectAddr: r.RedirectAddr,
		ServerMinVersion: r.ServerMinVersion, ServerMaxVersion: r.ServerMaxVersion}
}

// ConnConfig is the session configuration both sides derive from an OK result.
func (r *LoginResult) ConnConfig() Config {
	return Config{KeepaliveInterval: r.KeepaliveInterval, DeadPeerTimeout: r.DeadPeerTimeout, MaxFrame: r.MaxFrame,
		GSO: r.Capabilities&CapGSO != 0}
}

func (r *LoginResult) invalidTimers() string {
	switch {
	case r.KeepaliveInterval < time.Millisecond:
		return fmt.Sprintf("keepalive interval %v is under 1ms", r.KeepaliveInterval)
	case r.DeadPeerTimeout <= r.KeepaliveInterval:
		return fmt.Sprintf("dead-peer timeout %v is not longer than the keepalive interval %v", r.DeadPeerTimeout, r.KeepaliveInterval)
	case r.DeadPeerTimeout > time.Duration(1<<32-1)*time.Millisecond:
		return fmt.Sprintf("dead-peer timeout %v does not fit the wire field", r.DeadPeerTimeout)
	case r.MaxFrame < 64 || r.MaxFrame > MaxFrameLimit:
		return fmt.Sprintf("max frame %d outside 64..%d", r.MaxFrame, MaxFrameLimit)
	}
	return ""
}

// Login sends req on conn, a TLS connection that has completed its handshake, and
// reads the result. A refusal returns the result and its *LoginError; Redirect
// carries the address in both. ctx bounds the exchange, as does LoginTimeout.
func Login(ctx context.Context, conn net.Conn, req LoginRequest) (*LoginResult, error) {
	if req.Version == 0 {
		req.Version = Version
	}
	if req.MinVersion == 0 {
		req.MinVersion = MinVersion
	}
	if msg := req.invalid(); msg != "" {
		return nil, fmt.Errorf("invalid login request: %s", msg)
	}
	deadline := time.Now().Add(LoginTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// Cancellation unblocks the exchange by moving the deadline into the past.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	res, err := login(conn, &req)
	if !stop() {
		return nil, fmt.Errorf("login to %s: %w", conn.RemoteAddr(), ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("login to %s: %w", conn.RemoteAddr(), err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return res, res.Err()
}

func login(conn net.Conn, req *LoginRequest) (*LoginResult, error) {
	if _, err := conn.Write(encodeLoginRequest(req)); err != nil {
		return nil, err
	}
	body, err := readMessage(conn, msgLoginResult, maxLoginBody)
	if err != nil {
		return nil, err
	}
	res, err := decodeLoginResult(body)
	if err != nil {
		return nil, err
	}
	if res.Code == OK && (res.Version < req.MinVersion || res.Version > req.Version) {
		return nil, protoErr("server chose protocol version %d, outside the offered %d..%d", res.Version, req.MinVersion, req.Version)
	}
	if extra := res.Capabilities &^ req.Capabilities; extra != 0 {
		return nil, protoErr("server accepted capabilities %#x the client did not offer", extra)
	}
	return res, nil
}

// ReadLogin reads a client's login on conn, a TLS connection that has completed its
// handshake, within LoginTimeout. A request the server must refuse comes back as a
// *LoginError (BadRequest or VersionUnsupported): send err.Result() with
// WriteResult, then close. Any other error is a connection failure.
func ReadLogin(conn net.Conn) (*LoginRequest, error) {
	if err := conn.SetReadDeadline(time.Now().Add(LoginTimeout)); err != nil {
		return nil, err
	}
	body, err := readMessage(conn, msgLogin, maxLoginBody)
	if err != nil {
		if pe, ok := errors.AsType[*ProtocolError](err); ok {
			return nil, badRequest("%s", pe.Msg)
		}
		return nil, err
	}
	req, err := decodeLoginRequest(body)
	if err != nil {
		return nil, err
	}
	return req, conn.SetReadDeadline(time.Time{})
}

// WriteResult sends res within LoginTimeout. Zero fields of an OK result are set, in
// res, to the defaults (this package's Version, DefaultKeepaliveInterval,
// DefaultDeadPeerTimeout, DefaultMaxFrame), so res.ConnConfig() afterwards is the
// session's configuration.
func WriteResult(conn net.Conn, res *LoginResult) error {
	if res.Code == OK {
		if res.Version == 0 {
			res.Version = Version
		}
		if res.KeepaliveInterval == 0 {
			res.KeepaliveInterval = DefaultKeepaliveInterval
		}
		if res.DeadPeerTimeout == 0 {
			res.DeadPeerTimeout = max(DefaultDeadPeerTimeout, 3*res.KeepaliveInterval)
		}
		if res.MaxFrame == 0 {
			res.MaxFrame = DefaultMaxFrame
		}
		if msg := res.invalidTimers(); msg != "" {
			return fmt.Errorf("refusing to send an invalid login result: %s", msg)
		}
		if len(res.Ticket) > maxTicket {
			return fmt.Errorf("refusing to send a %d-byte ticket: the limit is %d", len(res.Ticket), maxTicket)
		}
	}
	if len(res.RedirectAddr) > maxName {
		return fmt.Errorf("refusing to send a %d-byte redirect address: the limit is %d", len(res.RedirectAddr), maxName)
	}
	if res.Code == VersionUnsupported && res.ServerMaxVersion == 0 {
		res.ServerMinVersion, res.ServerMaxVersion = MinVersion, Version
	}
	if err := conn.SetWriteDeadline(time.Now().Add(LoginTimeout)); err != nil {
		return err
	}
	if _, err := conn.Write(encodeLoginResult(res)); err != nil {
		return err
	}
	return conn.SetWriteDeadline(time.Time{})
}
