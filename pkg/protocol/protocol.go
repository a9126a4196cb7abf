// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package protocol is hubfleet's wire protocol: TLS 1.3 with ALPN "hubfleet/1", a
// versioned login exchange, then batches of length-prefixed Ethernet frames with
// keepalives in both directions. docs/protocol.md is the byte-level specification.
//
// A session is one TLS connection:
//
//	client                                  member
//	  TLS 1.3 handshake, ALPN hubfleet/1  ->
//	  Login (hub, user, credential, kind) ->
//	                                      <-  LoginResult (code, session, ticket, timers)
//	  Frames / Keepalive / Close          <-> Frames / Keepalive / Shutdown / Close
package protocol

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// ALPN is the TLS application protocol both sides must negotiate.
const ALPN = "hubfleet/1"

// Protocol versions this package speaks. A client offers [MinVersion, Version]; the
// server picks the highest version both support.
const (
	Version    uint16 = 1
	MinVersion uint16 = 1
)

// Capabilities a client offers in its Login and the server accepts (a subset) in
// its LoginResult. An old peer neither sends nor reads them, so a capability is
// used only when both sides named it.
const (
	// CapGSO: frames may travel as FramesGSO batches with their segmentation
	// offload metadata, including super-frames of up to MaxSuperFrame bytes.
	CapGSO uint32 = 1
	// CapHandoff: when the entry member relays the login to the hub's owner,
	// the client's session moves to a TLS session of its own with the owner,
	// on the same TCP connection, and the entry only copies bytes
	// (handoff.go). CapUDP and CapUDPChaCha are in udpcap.go.
	CapHandoff uint32 = 1 << 3
)

// The wire bytes of the session kinds (sessionkind.Kind, the one type for a
// kind; LoginRequest.SessionKind converts). They stay bytes, and
// LoginRequest.Kind a byte, while pkg/member/cluster (routeTable.staticTarget)
// still takes the kind as a uint8.
const (
	KindClient = uint8(sessionkind.Client)
	KindBridge = uint8(sessionkind.Bridge)
)

// Defaults the server sends in LoginResult unless it chooses otherwise.
const (
	DefaultKeepaliveInterval = time.Second
	DefaultDeadPeerTimeout   = 3 * time.Second
	// DefaultMaxFrame fits a 1500-byte MTU Ethernet frame with header, two VLAN
	// tags and headroom.
	DefaultMaxFrame = 1600
	// DefaultWriteTimeout is how long a write may stall before the peer is declared
	// dead. It is longer than the dead-peer timeout because a slow link can take
	// seconds to drain a full batch while the peer is alive.
	DefaultWriteTimeout = 10 * time.Second
	// LoginTimeout bounds each side of the login exchange, so a client that opens a
	// connection and sends nothing holds no member resources for long.
	LoginTimeout = 10 * time.Second
)

// Hard limits. Exceeding one is a protocol error that ends the session; they keep a
// broken or hostile peer from making the reader buffer or loop without bound.
const (
	// MaxFrameLimit is the largest frame the encoding can carry (a uint16 length).
	MaxFrameLimit = 65535
	// MaxBatchFrames is the most frames one Frames message may carry.
	MaxBatchFrames = 128
	// MaxBatchBody is the largest Frames message body in bytes.
	MaxBatchBody = 1 << 20
	// MaxSuperFrame is the longest super-frame (a frame with a GSO type) a
	// session with CapGSO carries: a 64 KiB IP packet with Ethernet header and
	// two VLAN tags. MaxFrame still bounds every other frame and a
	// super-frame's segment size.
	MaxSuperFrame = framing.MaxSuperFrame
	// MaxGSOBatchBody is the largest FramesGSO message body in bytes.
	MaxGSOBatchBody = framing.MaxMetaBatchBody
	// maxControlBody bounds Keepalive, Shutdown, Close and unknown-extension bodies.
	maxControlBody = 4096
	// maxLoginBody bounds Login and LoginResult bodies.
	maxLoginBody = 16 << 10
	// MaxReason is the longest Shutdown or Close reason sent; longer ones are cut.
	MaxReason = 1024
)

// Code is the outcome of a login.
type Code uint16

// Login result codes. The numbers are on the wire: never renumber, only append.
const (
	OK                 Code = 0
	UnknownHub         Code = 1
	BadCredentials     Code = 2
	HubFull            Code = 3
	LicenseExhausted   Code = 4
	Redirect           Code = 5 // RedirectAddr says where to log in instead
	Relay              Code = 6
	ShuttingDown       Code = 7
	VersionUnsupported Code = 8
	NotServedHere      Code = 9
	Internal           Code = 10
	BadRequest         Code = 11
	// UserSessionLimit: the user already holds the hub's maxSessionsPerUser
	// sessions. Clients before it print "code 12" with the message and retry,
	// as for any refusal they do not know.
	UserSessionLimit Code = 12
)

var codeNames = [...]string{
	OK:                 "ok",
	UnknownHub:         "unknown hub",
	BadCredentials:     "bad credentials",
	HubFull:            "hub full",
	LicenseExhausted:   "license exhausted",
	Redirect:           "redirect",
	Relay:              "relay",
	ShuttingDown:       "member shutting down",
	VersionUnsupported: "protocol version unsupported",
	NotServedHere:      "hub not served by this member",
	Internal:           "internal error",
	BadRequest:         "bad request",
	UserSessionLimit:   "user session limit",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// LoginError is a refused login as the client sees it (Login and Dial return it),
// and what ReadLogin returns for a request the server must refuse.
type LoginError struct {
	Code    Code
	Message string
	// RedirectAddr is set with Code Redirect.
	RedirectAddr string
	// ServerMinVersion and ServerMaxVersion are set with Code VersionUnsupported.
	ServerMinVersion, ServerMaxVersion uint16
}

func (e *LoginError) Error() string {
	s := "login refused: " + e.Reason()
	if e.RedirectAddr != "" {
		s += " (log in at " + e.RedirectAddr + ")"
	}
	return s
}

// Result is the LoginResult a server sends to refuse with this error.
func (e *LoginError) Result() *LoginResult {
	return &LoginResult{
		Code: e.Code, Message: e.Message, RedirectAddr: e.RedirectAddr,
		ServerMinVersion: e.ServerMinVersion, ServerMaxVersion: e.ServerMaxVersion,
	}
}

var (
	// ErrPeerDead: nothing (no frame, no keepalive) arrived within the dead-peer
	// timeout, or the peer accepted no data for the write timeout.
	ErrPeerDead = errors.New("peer dead")
	// ErrProtocol is wrapped by every *ProtocolError.
	ErrProtocol = errors.New("protocol error")
	// ErrShutdown is wrapped by every *ShutdownError, for errors.Is checks.
	ErrShutdown = errors.New("server shutting down the session")
	// ErrPeerClosed: the peer ended the session with a Close message.
	ErrPeerClosed = errors.New("peer closed the session")
)

// ProtocolError is a peer's violation of the wire format. The session is closed.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol error: " + e.Msg }
func (e *ProtocolError) Unwrap() error { return ErrProtocol }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// Reason is the refusal's code and message, for a person: "license exhausted:
// no client connection license free on member-0 …". A member's message may
// begin with the code's own words already (members do, so their logs read
// alone); they are then said once, not twice.
func (e *LoginError) Reason() string {
	code := e.Code.String()
	switch {
	case e.Message == "":
		return code
	case strings.HasPrefix(e.Message, code):
		return e.Message
	}
	return code + ": " + e.Message
}

// ShutdownError is the server's request that the client reconnect now, to another
// member; it is not a failure of the client.
type ShutdownError struct{ Reason string }

func (e *ShutdownError) Error() string {
	return "server shut the session down, reconnect now: " + e.Reason
}
func (e *ShutdownError) Unwrap() error { return ErrShutdown }
