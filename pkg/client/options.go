// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package client is the VPN client and bridge: it joins a local TAP device to a
// hub of a hubfleet cluster over the wire protocol (pkg/protocol) and keeps it
// joined. Run dials and logs in, pumps frames both ways with one goroutine pair
// per session, and on any loss (dead peer, connection reset, a member's Shutdown)
// reconnects at once and then with jittered exponential backoff, logging in again
// with the resumption ticket of the last session so a member that restarts does
// not pay an argon2 hash per returning client. The TAP device stays up across
// reconnects, so the host's addresses and routes through it survive.
package client

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
	"github.com/hubfleet/hubfleet/pkg/tap"
)

// Options configure Run. There is deliberately no way to skip certificate
// verification: without CAFile or CAFingerprint the system roots verify the
// server as usual.
type Options struct {
	// Server is the cluster's address, host:port (the VPNCluster Service).
	Server string
	Hub    string
	User   string
	// Password logs in the first time, and again whenever a ticket is refused.
	Password string
	Kind     sessionkind.Kind

	// CAFile is the cluster CA in PEM (ca.crt of the cluster's TLS Secret).
	CAFile string
	// CAFingerprint pins the SHA-256 of the cluster CA or the member
	// certificate, in hex (colons allowed).
	CAFingerprint string
	// ServerName, if set, must be a name in the member's certificate.
	ServerName string

	// TAPName names the TAP device to create; "" lets the kernel pick.
	TAPName string
	// MTU, if positive, is set on the TAP device.
	MTU int
	// Address, if set, is assigned to the TAP device (CIDR, such as 172.31.0.1/24).
	Address string
	// DHCP obtains the TAP's address from the hub's DHCP server (spec.dhcp),
	// renews it and releases it when Run returns (dhcp.go). Linux only.
	DHCP bool
	// Bridge, for a bridge session, is the Linux bridge (or plain interface, which
	// gets a new bridge with the TAP, see tap.AddToBridge) the TAP joins.
	Bridge string
	// Device, if set, is used instead of creating a TAP device (tests, or a
	// caller with its own device); TAPName, MTU and Address are then ignored.
	// Run closes it when it returns.
	Device tap.Device

	// NoOffload opens the TAP without segmentation offload: the kernel then
	// hands the client MTU-sized frames, and the session does not offer the
	// member super-frames (CapGSO). For kernels or setups where offloads
	// misbehave, and to measure the fallback; offloads are on by default.
	NoOffload bool

	// NoUDP keeps every frame on the TLS connection: the session does not
	// offer the UDP data channel (CapUDP). `hubfleet connect` sets it unless
	// --udp is given: the UDP path cuts super-frames to the path MTU and
	// writes them to the TAP one by one, so on a clean, fast path TLS with
	// super-frames end to end is quicker (test/netns
	// TestSuperFramesThroughNamespaces); on lossy, long-delay paths UDP wins
	// (docs/benchmarks-udp.md). It falls back to TLS by itself when its
	// path stops working.
	NoUDP bool

	// NoHandoff keeps a relayed session's TLS at the entry member: the
	// session does not offer CapHandoff, so a login that lands on a member
	// without the hub stays relayed frame by frame (two more AES-GCM passes
	// per byte) instead of moving to a TLS session with the hub's member
	// (protocol/handoff.go). For comparison and for entries that must see
	// the session; handoff is on by default.
	NoHandoff bool

	// NoRetry makes Run return the first failure instead of retrying, for
	// scripts that want an exit code rather than a client that waits.
	NoRetry bool
	// ClientName is sent to the member for its logs.
	ClientName string
	// Logger receives details (debug level and up); nil discards them.
	Logger *slog.Logger
	// Status receives one line per state change ("connected to hub blue via
	// 10.0.0.1:8443 (session 1a2b3c4d, tap hf0)"); nil discards them.
	Status io.Writer
}

func (o *Options) check() error {
	var missing []string
	if o.Server == "" {
		missing = append(missing, "server address (--server host:port)")
	}
	if o.Hub == "" {
		missing = append(missing, "hub (--hub)")
	}
	if o.User == "" {
		missing = append(missing, "user (--user)")
	}
	if o.Password == "" {
		missing = append(missing, "password (--password-file or HUBFLEET_PASSWORD)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %v", missing)
	}
	if _, _, err := net.SplitHostPort(o.Server); err != nil {
		return fmt.Errorf("server %q is not host:port (such as vpn.example.com:8443): %w", o.Server, err)
	}
	if !o.Kind.Valid() {
		return fmt.Errorf("session kind %d is neither client nor bridge", o.Kind)
	}
	if o.DHCP && (o.Address != "" || o.Kind == sessionkind.Bridge) {
		return errors.New("DHCP is for a client without --address: a bridge joins a LAN that has its own addresses")
	}
	if o.Kind == sessionkind.Bridge && o.Bridge == "" && o.Device == nil {
		return errors.New("a bridge session needs the bridge or interface to join (--bridge)")
	}
	return nil
}

// Reason says why Run stopped for good.
type Reason int

const (
	// ReasonConfig: the options are incomplete or malformed.
	ReasonConfig Reason = iota + 1
	// ReasonBadCredentials: the member refused the user or password.
	ReasonBadCredentials
	// ReasonUnknownHub: no such hub on the cluster.
	ReasonUnknownHub
	// ReasonTLS: the server's certificate failed verification against the
	// configured CA or fingerprint, or the CA file is unusable.
	ReasonTLS
	// ReasonTAP: the TAP device could not be created or configured, or failed.
	ReasonTAP
	// ReasonLicense: no license left (only returned with NoRetry).
	ReasonLicense
	// ReasonRefused: any other refusal that retrying cannot fix (protocol
	// version, malformed login), or, with NoRetry, any retryable failure.
	ReasonRefused
)

// Error is Run's error for a failure it does not retry.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// tlsVerifyError marks a failure of our own certificate checks, so it can be
// told from a network error during the handshake (which is retried).
type tlsVerifyError struct{ err error }

func (e *tlsVerifyError) Error() string { return e.err.Error() }
func (e *tlsVerifyError) Unwrap() error { return e.err }
