// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"encoding/binary"
	"fmt"
)

// UDP data channel capabilities (Login and LoginResult tag 11). The channel
// itself is pkg/datagram; docs/protocol.md, "UDP data channel", specifies it.
const (
	// CapUDP: after the login, frames may also travel as datagrams sealed
	// with keys exported from this TLS session, to the member's UDP port.
	// TLS stays the control channel and carries frames whenever the UDP path
	// is not up. A member grants it with a UDPParams field.
	CapUDP uint32 = 1 << 1
	// CapUDPChaCha: the client has no AES instructions, so the member should
	// choose ChaCha20-Poly1305. Meaningful only with CapUDP; a member never
	// grants it, it only reads it.
	CapUDPChaCha uint32 = 1 << 2
)

// tagRelayUDPKeys is the Login field with a relayed session's UDP keys
// (LoginRequest.RelayUDPKeys): epochs 0.. of both directions, each epoch
// the client-to-server key then the server-to-client key (datagram.EpochKeys).
const tagRelayUDPKeys = 12

// relayUDPKeyLen is one epoch's keys; maxRelayUDPKeys bounds the field
// (datagram.MaxRelayKeyEpochs epochs).
const (
	relayUDPKeyLen  = 64
	maxRelayUDPKeys = 64 * relayUDPKeyLen
)

// tagUDP is the LoginResult field with the UDP parameters (OK with CapUDP).
const tagUDP = 12

// UDPParams are the member's half of the UDP channel agreement.
type UDPParams struct {
	// Port is the member's UDP port; 0 means the port number of the TCP
	// connection the client dialled (a Kubernetes Service exposes both).
	Port uint16
	// Session is the ID every datagram carries, for routing.
	Session [8]byte
	// Suite is the AEAD (datagram.Suite): 1 AES-256-GCM, 2 ChaCha20-Poly1305.
	Suite uint8
}

// udpParamsLen: port u16, session ID [8], suite u8.
const udpParamsLen = 2 + 8 + 1

func appendUDPParams(b []byte, r *LoginResult) []byte {
	if r.UDP == nil || r.Capabilities&CapUDP == 0 {
		return b
	}
	v := binary.BigEndian.AppendUint16(make([]byte, 0, udpParamsLen), r.UDP.Port)
	v = append(v, r.UDP.Session[:]...)
	v = append(v, r.UDP.Suite)
	return appendField(b, tagUDP, v)
}

func decodeUDPParams(r *LoginResult, v []byte) error {
	if len(v) != udpParamsLen {
		return fmt.Errorf("UDP parameters are %d bytes, want %d", len(v), udpParamsLen)
	}
	if r.Code != OK {
		return nil
	}
	p := &UDPParams{Port: binary.BigEndian.Uint16(v)}
	copy(p.Session[:], v[2:10])
	p.Suite = v[10]
	r.UDP = p
	return nil
}

// checkUDP makes CapUDP and its parameters come together: a result granting
// the capability without saying where to send is a protocol error, and
// parameters without the capability are ignored.
func checkUDP(r *LoginResult) error {
	if r.Code != OK {
		return nil
	}
	if r.Capabilities&CapUDPChaCha != 0 {
		return fmt.Errorf("capability CapUDPChaCha is the client's to offer, not the server's to grant")
	}
	if r.Capabilities&CapUDP != 0 && r.UDP == nil {
		return fmt.Errorf("CapUDP granted without UDP parameters")
	}
	if r.Capabilities&CapUDP == 0 {
		r.UDP = nil
	}
	return nil
}
