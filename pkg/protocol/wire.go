// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/hubfleet/hubfleet/pkg/framing"
)

// Message types. Types with the high bit set are optional extensions a receiver that
// does not know them skips; any other unknown type is a protocol error.
const (
	msgLogin       byte = 0x01
	msgLoginResult byte = 0x02
	msgFrames      byte = 0x10
	msgKeepalive   byte = 0x11
	msgShutdown    byte = 0x12
	msgClose       byte = 0x13
	// msgFramesGSO is a batch whose frames carry their gso.Meta (framing.Meta
	// format); only sessions that negotiated CapGSO send or accept it.
	msgFramesGSO byte = 0x14
	msgExtension byte = 0x80
)

// headerLen: type (1 byte) and body length (uint24, big-endian).
const headerLen = framing.HeaderLen

func putHeader(b []byte, typ byte, n int) { framing.PutHeader(b, typ, n) }

func parseHeader(b []byte) (typ byte, n int) { return framing.ParseHeader(b) }

// Login field tags (TLV: tag byte, uint16 length, value). Unknown tags are skipped so
// later versions can add fields; never reuse a tag.
const (
	tagHub             = 1
	tagUser            = 2
	tagPassword        = 3
	tagTicket          = 4
	tagKind            = 5
	tagClientName      = 6
	tagMaxFrame        = 7
	tagRelayFlags      = 8
	tagRelayEntry      = 9
	tagRelayClientAddr = 10
	// tagCapabilities (uint32) is in both the Login (what the client offers)
	// and the LoginResult (the subset the server accepted).
	tagCapabilities = 11
)

// LoginResult field tags.
const (
	tagMessage          = 1
	tagRedirectAddr     = 2
	tagSessionID        = 3
	tagResultTicket     = 4
	tagTicketExpiry     = 5
	tagKeepaliveMillis  = 6
	tagDeadMillis       = 7
	tagResultMaxFrame   = 8
	tagServerMinVersion = 9
	tagServerMaxVersion = 10
)

// Field size limits.
const (
	maxName       = 255
	maxPassword   = 1024
	maxTicket     = 1024
	maxMessageLen = 1024
)

func appendField(b []byte, tag byte, v []byte) []byte {
	b = append(b, tag, byte(len(v)>>8), byte(len(v)))
	return append(b, v...)
}

func appendStr(b []byte, tag byte, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, tag, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func appendU16(b []byte, tag byte, v uint16) []byte {
	return appendField(b, tag, binary.BigEndian.AppendUint16(nil, v))
}

// walkFields calls fn for each TLV field of b, refusing truncated and repeated fields.
func walkFields(b []byte, fn func(tag byte, v []byte) error) error {
	var seen [256 / 64]uint64
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("field header cut short (%d bytes left)", len(b))
		}
		tag, n := b[0], int(binary.BigEndian.Uint16(b[1:3]))
		if len(b)-3 < n {
			return fmt.Errorf("field %d claims %d bytes but %d are left", tag, n, len(b)-3)
		}
		if seen[tag/64]&(1<<(tag%64)) != 0 {
			return fmt.Errorf("field %d appears twice", tag)
		}
		seen[tag/64] |= 1 << (tag % 64)
		if err := fn(tag, b[3:3+n]); err != nil {
			return err
		}
		b = b[3+n:]
	}
	return nil
}

func text(v []byte, what string, limit int) (string, error) {
	if len(v) > limit {
		return "", fmt.Errorf("%s is %d bytes, the limit is %d", what, len(v), limit)
	}
	if !utf8.Valid(v) {
		return "", fmt.Errorf("%s is not valid UTF-8", what)
	}
	return string(v), nil
}

func fixed(v []byte, what string, n int) ([]byte, error) {
	if len(v) != n {
		return nil, fmt.Errorf("%s is %d bytes, want %d", what, len(v), n)
	}
	return v, nil
}

func encodeLoginRequest(r *LoginRequest) []byte {
	b := make([]byte, headerLen, 64+len(r.Hub)+len(r.User)+len(r.Password)+len(r.Ticket)+len(r.ClientName))
	b = binary.BigEndian.AppendUint16(b, r.Version)
	b = binary.BigEndian.AppendUint16(b, r.MinVersion)
	b = appendStr(b, tagHub, r.Hub)
	b = appendStr(b, tagUser, r.User)
	b = appendStr(b, tagPassword, r.Password)
	if len(r.Ticket) > 0 {
		b = appendField(b, tagTicket, r.Ticket)
	}
	b = appendField(b, tagKind, []byte{r.Kind})
	b = appendStr(b, tagClientName, r.ClientName)
	if r.MaxFrame != 0 {
		b = appendU16(b, tagMaxFrame, uint16(r.MaxFrame))
	}
	if r.Relayed {
		b = appendField(b, tagRelayFlags, []byte{1})
	}
	b = appendStr(b, tagRelayEntry, r.RelayEntry)
	b = appendStr(b, tagRelayClientAddr, r.RelayClientAddr)
	if r.Capabilities != 0 {
		b = appendField(b, tagCapabilities, binary.BigEndian.AppendUint32(nil, r.Capabilities))
	}
	if len(r.RelayUDPKeys) > 0 {
		b = appendField(b, tagRelayUDPKeys, r.RelayUDPKeys)
	}
	if len(r.HandoffToken) > 0 {
		b = appendField(b, tagHandoffToken, r.HandoffToken)
	}
	putHeader(b, msgLogin, len(b)-headerLen)
	return b
}

// decodeLoginRequest parses a Login body. Errors are *LoginError values ready to be
// sent back: BadRequest, or VersionUnsupported when no common version exists.
func decodeLoginRequest(body []byte) (*LoginRequest, error) {
	if len(body) < 4 {
		return nil, badRequest("login message of %d bytes is shorter than its 4-byte version header", len(body))
	}
	r := &LoginRequest{
		Version:    binary.BigEndian.Uint16(body[0:2]),
		MinVersion: binary.BigEndian.Uint16(body[2:4]),
	}
	// The version pair is checked before the fields: a later version may lay them out
	// differently, and a client that speaks only that version must hear
	// VersionUnsupported, not BadRequest.
	if r.MinVersion > r.Version || r.MinVersion == 0 {
		return nil, badRequest("version range %d..%d is empty", r.MinVersion, r.Version)
	}
	if r.NegotiatedVersion() == 0 {
		return nil, &LoginError{
			Code: VersionUnsupported,
			Message: fmt.Sprintf("client speaks protocol versions %d..%d, this member speaks %d..%d: upgrade the older side",
				r.MinVersion, r.Version, MinVersion, Version),
			ServerMinVersion: MinVersion, ServerMaxVersion: Version,
		}
	}
	var seenKind bool
	err := walkFields(body[4:], func(tag byte, v []byte) (err error) {
		switch tag {
		case tagHub:
			r.Hub, err = text(v, "hub name", maxName)
		case tagUser:
			r.User, err = text(v, "user name", maxName)
		case tagPassword:
			if len(v) > maxPassword {
				return fmt.Errorf("password is %d bytes, the limit is %d", len(v), maxPassword)
			}
			r.Password = string(v)
		case tagTicket:
			if len(v) > maxTicket {
				return fmt.Errorf("ticket is %d bytes, the limit is %d", len(v), maxTicket)
			}
			if len(v) > 0 {
				r.Ticket = append([]byte(nil), v...)
			}
		case tagKind:
			if v, err = fixed(v, "session kind", 1); err == nil {
				r.Kind, seenKind = v[0], true
			}
		case tagClientName:
			r.ClientName, err = text(v, "client name", maxName)
		case tagMaxFrame:
			if v, err = fixed(v, "max frame", 2); err == nil {
				r.MaxFrame = int(binary.BigEndian.Uint16(v))
			}
		case tagRelayFlags:
			if v, err = fixed(v, "relay flags", 1); err == nil {
				r.Relayed = v[0]&1 != 0
			}
		case tagRelayEntry:
			r.RelayEntry, err = text(v, "relay entry member", maxName)
		case tagRelayClientAddr:
			r.RelayClientAddr, err = text(v, "relayed client address", maxName)
		case tagCapabilities:
			if v, err = fixed(v, "capabilities", 4); err == nil {
				r.Capabilities = binary.BigEndian.Uint32(v)
			}
		case tagRelayUDPKeys:
			if len(v) > 0 {
				r.RelayUDPKeys = append([]byte(nil), v...)
			}
		case tagHandoffToken:
			if len(v) > 0 {
				r.HandoffToken = append([]byte(nil), v...)
			}
		}
		return err
	})
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if !seenKind {
		return nil, badRequest("session kind missing")
	}
	if msg := r.invalid(); msg != "" {
		return nil, badRequest("%s", msg)
	}
	return r, nil
}

func badRequest(format string, args ...any) *LoginError {
	return &LoginError{Code: BadRequest, Message: fmt.Sprintf(format, args...)}
}

func encodeLoginResult(r *LoginResult) []byte {
	b := make([]byte, headerLen, 128+len(r.Message)+len(r.RedirectAddr)+len(r.Ticket))
	b = binary.BigEndian.AppendUint16(b, uint16(r.Code))
	b = binary.BigEndian.AppendUint16(b, r.Version)
	b = appendStr(b, tagMessage, truncate(r.Message, maxMessageLen))
	b = appendStr(b, tagRedirectAddr, r.RedirectAddr)
	if r.Code == OK {
		b = appendField(b, tagSessionID, r.SessionID[:])
		if len(r.Ticket) > 0 {
			b = appendField(b, tagResultTicket, r.Ticket)
			b = appendField(b, tagTicketExpiry, binary.BigEndian.AppendUint64(nil, uint64(r.TicketExpiry.UnixMilli())))
		}
		b = appendField(b, tagKeepaliveMillis, binary.BigEndian.AppendUint32(nil, uint32(r.KeepaliveInterval.Milliseconds())))
		b = appendField(b, tagDeadMillis, binary.BigEndian.AppendUint32(nil, uint32(r.DeadPeerTimeout.Milliseconds())))
		b = appendU16(b, tagResultMaxFrame, uint16(r.MaxFrame))
		if r.Capabilities != 0 {
			b = appendField(b, tagCapabilities, binary.BigEndian.AppendUint32(nil, r.Capabilities))
		}
		b = appendUDPParams(b, r)
		if r.Capabilities&CapHandoff != 0 && len(r.HandoffToken) > 0 {
			b = appendField(b, tagHandoffToken, r.HandoffToken)
		}
	}
	if r.ServerMaxVersion != 0 {
		b = appendU16(b, tagServerMinVersion, r.ServerMinVersion)
		b = appendU16(b, tagServerMaxVersion, r.ServerMaxVersion)
	}
	putHeader(b, msgLoginResult, len(b)-headerLen)
	return b
}

func decodeLoginResult(body []byte) (*LoginResult, error) {
	if len(body) < 4 {
		return nil, protoErr("login result of %d bytes is shorter than its 4-byte header", len(body))
	}
	r := &LoginResult{
		Code:    Code(binary.BigEndian.Uint16(body[0:2])),
		Version: binary.BigEndian.Uint16(body[2:4]),
	}
	var keepalive, dead, maxFrame bool
	err := walkFields(body[4:], func(tag byte, v []byte) (err error) {
		switch tag {
		case tagMessage:
			r.Message, err = text(v, "message", maxMessageLen)
		case tagRedirectAddr:
			r.RedirectAddr, err = text(v, "redirect address", maxName)
		case tagSessionID:
			if v, err = fixed(v, "session ID", 16); err == nil {
				copy(r.SessionID[:], v)
			}
		case tagResultTicket:
			if len(v) > maxTicket {
				return fmt.Errorf("ticket is %d bytes, the limit is %d", len(v), maxTicket)
			}
			if len(v) > 0 {
				r.Ticket = append([]byte(nil), v...)
			}
		case tagTicketExpiry:
			if v, err = fixed(v, "ticket expiry", 8); err == nil {
				r.TicketExpiry = time.UnixMilli(int64(binary.BigEndian.Uint64(v)))
			}
		case tagKeepaliveMillis:
			if v, err = fixed(v, "keepalive interval", 4); err == nil {
				r.KeepaliveInterval, keepalive = time.Duration(binary.BigEndian.Uint32(v))*time.Millisecond, true
			}
		case tagDeadMillis:
			if v, err = fixed(v, "dead-peer timeout", 4); err == nil {
				r.DeadPeerTimeout, dead = time.Duration(binary.BigEndian.Uint32(v))*time.Millisecond, true
			}
		case tagResultMaxFrame:
			if v, err = fixed(v, "max frame", 2); err == nil {
				r.MaxFrame, maxFrame = int(binary.BigEndian.Uint16(v)), true
			}
		case tagServerMinVersion:
			if v, err = fixed(v, "server min version", 2); err == nil {
				r.ServerMinVersion = binary.BigEndian.Uint16(v)
			}
		case tagServerMaxVersion:
			if v, err = fixed(v, "server max version", 2); err == nil {
				r.ServerMaxVersion = binary.BigEndian.Uint16(v)
			}
		case tagCapabilities:
			if v, err = fixed(v, "capabilities", 4); err == nil && r.Code == OK {
				r.Capabilities = binary.BigEndian.Uint32(v)
			}
		case tagUDP:
			err = decodeUDPParams(r, v)
		case tagHandoffToken:
			if r.Code == OK && len(v) > 0 {
				r.HandoffToken = append([]byte(nil), v...)
			}
		}
		return err
	})
	if err == nil {
		err = checkUDP(r)
	}
	if err == nil {
		err = checkHandoff(r)
	}
	if err != nil {
		return nil, protoErr("bad login result: %v", err)
	}
	if r.Code == OK {
		if !keepalive || !dead || !maxFrame {
			return nil, protoErr("bad login result: OK without keepalive interval, dead-peer timeout and max frame")
		}
		if msg := r.invalidTimers(); msg != "" {
			return nil, protoErr("bad login result: %s", msg)
		}
	}
	return r, nil
}

// readMessage reads one whole message of type want. Login messages are read with
// exact-length reads, never buffered ahead, so no byte of the frame stream that
// follows is consumed before the Conn's reader takes over.
func readMessage(r io.Reader, want byte, limit int) ([]byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	typ, n := parseHeader(h[:])
	if typ != want {
		return nil, protoErr("got message type 0x%02x, want 0x%02x", typ, want)
	}
	if n > limit {
		return nil, protoErr("message of %d bytes is over the %d-byte limit", n, limit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
