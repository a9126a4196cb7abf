// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package datagram is the UDP data channel of a hubfleet session: frames
// sealed with an AEAD whose keys come from the session's TLS connection
// (RFC 5705 exporter), an explicit 64-bit counter nonce, an RFC 6479 style
// anti-replay window and in-step rekeying. It knows nothing of sockets or
// Kubernetes; pkg/member and pkg/client carry its datagrams.
//
// A datagram is
//
//	type u8 | session ID [8] | epoch u8 | counter u64 | AEAD(payload) | tag [16]
//
// The first 18 bytes are sent in the clear and authenticated as the AEAD's
// additional data: the session ID lets a member find the session (and follow
// a client whose address changed) before it decrypts anything, the epoch
// names the key, the counter is the nonce and the replay window's index.
// docs/protocol.md ("UDP data channel") is the byte-level specification.
package datagram

import (
	"encoding/binary"
	"errors"
)

// Datagram types. A receiver drops an unknown type after authenticating it,
// so a later version may add types.
const (
	// TypeData carries a framing.Meta batch body: count u8, then frames with
	// their Meta headers (docs/protocol.md, FramesGSO frames).
	TypeData byte = 1
	// TypeKeepalive is empty; it keeps NAT bindings open and tells the peer
	// the path works.
	TypeKeepalive byte = 2
	// TypeProbe asks for a ProbeAck: probe ID u32, then padding to the size
	// being probed (DPLPMTUD: the padding is the probe).
	TypeProbe byte = 3
	// TypeProbeAck answers a Probe: probe ID u32, probe size u16 (the whole
	// datagram as received).
	TypeProbeAck byte = 4
)

const (
	// HeaderLen is the clear header: type, session ID, epoch, counter.
	HeaderLen = 1 + SessionIDLen + 1 + 8
	// SessionIDLen is the length of the routing ID a member assigns.
	SessionIDLen = 8
	// TagLen is the AEAD tag (AES-GCM and ChaCha20-Poly1305 alike).
	TagLen = 16
	// Overhead is what sealing adds to a payload.
	Overhead = HeaderLen + TagLen
	// MaxDatagram is the largest datagram this package builds or accepts (a
	// 9000-byte jumbo path less IPv4 and UDP headers, rounded up); every
	// pooled buffer holds one.
	MaxDatagram = 9216
	// MinDatagram is the datagram size every path must carry: IPv6's minimum
	// MTU (1280) less the IPv6 and UDP headers. DPLPMTUD starts here
	// (RFC 8899 BASE_PLPMTU).
	MinDatagram = 1280 - 40 - 8
)

// SessionID routes a datagram to its session.
type SessionID [SessionIDLen]byte

// Header is a datagram's clear header.
type Header struct {
	Type    byte
	Session SessionID
	Epoch   uint8
	Counter uint64
}

var (
	// ErrShort: too short to hold a header and a tag, or over MaxDatagram.
	ErrShort = errors.New("datagram: bad length")
	// ErrSession: the session ID is not this session's.
	ErrSession = errors.New("datagram: wrong session")
	// ErrEpoch: the key epoch is neither the current one, the one before nor
	// the next.
	ErrEpoch = errors.New("datagram: unknown key epoch")
	// ErrReplay: the counter was seen already, or is older than the window.
	ErrReplay = errors.New("datagram: replayed or too old")
	// ErrAuth: the AEAD refused the datagram (wrong key, altered bytes).
	ErrAuth = errors.New("datagram: authentication failed")
	// ErrExhausted: the sender used its key for RejectAfterMessages datagrams
	// without a rekey; nothing more may be sent under it.
	ErrExhausted = errors.New("datagram: key exhausted")
)

// ParseHeader reads the clear header; it checks lengths only, so a member
// can route a datagram before it knows whose it is.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < Overhead || len(b) > MaxDatagram {
		return Header{}, ErrShort
	}
	var h Header
	h.Type = b[0]
	copy(h.Session[:], b[1:1+SessionIDLen])
	h.Epoch = b[1+SessionIDLen]
	h.Counter = binary.BigEndian.Uint64(b[2+SessionIDLen:])
	return h, nil
}

func putHeader(b []byte, h *Header) {
	b[0] = h.Type
	copy(b[1:], h.Session[:])
	b[1+SessionIDLen] = h.Epoch
	binary.BigEndian.PutUint64(b[2+SessionIDLen:], h.Counter)
}
