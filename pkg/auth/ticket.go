// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// TicketKey is the HMAC-SHA256 key every member of a cluster shares. Because any
// member can check a ticket with it, a client whose member died resumes on any other
// member without a password and without an argon2id computation.
type TicketKey [32]byte

// NewTicketKey returns a random key.
func NewTicketKey() (TicketKey, error) {
	var k TicketKey
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("reading a random ticket key: %w", err)
	}
	return k, nil
}

// DefaultTicketTTL bounds how long a stolen ticket is useful; a client renews its
// ticket on every login, so it only needs to outlive one reconnect.
const DefaultTicketTTL = 10 * time.Minute

// MaxTicketName is the longest user or hub name a ticket can carry.
const MaxTicketName = 255

// TicketClaims is what a ticket asserts: this user already proved its credentials
// for this hub and session kind, until Expiry.
type TicketClaims struct {
	User string
	Hub  string
	Kind uint8
	// Expiry has millisecond precision; zero in IssueTicket means now+DefaultTicketTTL.
	Expiry time.Time
	// SessionID identifies the session the ticket was issued to, so a resumed
	// session can be correlated with the one it replaces.
	SessionID [16]byte
	// Credential is CredentialDigest of the user's stored password hash when
	// the ticket was issued: a ticket outlives no change of password. Zero
	// in a version 1 ticket (issued before the field), which binds nothing.
	Credential Credential
}

// Credential identifies one stored password of a user (CredentialDigest):
// it changes when the password does.
type Credential [8]byte

// credentialDomain keeps CredentialDigest apart from any other hash of a
// PHC string.
const credentialDomain = "hubfleet credential\x00"

// CredentialDigest is the Credential of a stored password hash (a PHC
// string). It names the password without revealing anything usable: a
// digest of a salted argon2id hash, so a ticket may carry it in clear.
func CredentialDigest(phc string) Credential {
	h := sha256.New()
	h.Write([]byte(credentialDomain))
	h.Write([]byte(phc))
	var c Credential
	copy(c[:], h.Sum(nil))
	return c
}

var (
	// ErrTicketInvalid means the ticket was not issued with any current key: forged,
	// corrupted, or made with a key rotated out more than one rotation ago.
	ErrTicketInvalid = errors.New("resumption ticket invalid: log in with your password to get a new one")
	// ErrTicketExpired means the ticket is genuine but too old.
	ErrTicketExpired = errors.New("resumption ticket expired: log in with your password to get a new one")
	// ErrTicketMismatch means the ticket is genuine but for another user, hub or
	// session kind than the login presenting it.
	ErrTicketMismatch = errors.New("resumption ticket was issued for a different login")
	// ErrTicketCredential means the ticket is genuine but the user's password
	// changed after it was issued.
	ErrTicketCredential = errors.New("resumption ticket predates a change of the password: log in with the new password")
)

const (
	// ticketVersion 2 added the credential; version 1 tickets still verify
	// (for the minutes they live across an upgrade) and bind no password.
	ticketVersion   = 2
	ticketVersionV1 = 1
	ticketFixedV1   = 1 + 1 + 8 + 16          // version, kind, expiry ms, session ID
	ticketFixed     = ticketFixedV1 + credLen // and the credential
	credLen         = len(Credential{})
	ticketMACLen    = sha256.Size
	ticketMinLen    = ticketFixedV1 + 1 + 1 + ticketMACLen
	// MaxTicketLen is the longest ticket IssueTicket produces.
	MaxTicketLen = ticketFixed + 1 + 1 + ticketMACLen + 2*MaxTicketName
)

// ticketDomain separates ticket MACs from anything else that might one day be MACed
// with the same key.
var ticketDomain = []byte("hubfleet resumption ticket\x00")

// IssueTicket encodes and MACs c with key. Layout: version, kind, expiry (Unix ms,
// big-endian), session ID, credential, user (length byte + bytes), hub (same),
// HMAC-SHA256.
// The claims are readable by the client; only their integrity is protected.
func IssueTicket(key TicketKey, c TicketClaims, now time.Time) ([]byte, error) {
	if len(c.User) > MaxTicketName || len(c.Hub) > MaxTicketName {
		return nil, fmt.Errorf("cannot issue a ticket for user of %d bytes and hub of %d bytes: names are limited to %d bytes", len(c.User), len(c.Hub), MaxTicketName)
	}
	if c.Expiry.IsZero() {
		c.Expiry = now.Add(DefaultTicketTTL)
	}
	b := make([]byte, 0, ticketMinLen+len(c.User)+len(c.Hub))
	b = append(b, ticketVersion, c.Kind)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expiry.UnixMilli()))
	b = append(b, c.SessionID[:]...)
	b = append(b, c.Credential[:]...)
	b = append(b, byte(len(c.User)))
	b = append(b, c.User...)
	b = append(b, byte(len(c.Hub)))
	b = append(b, c.Hub...)
	return append(b, ticketMAC(&key, b)...), nil
}

// VerifyTicket checks ticket against each key in turn (current first, then the
// previous one during a rotation) and returns its claims. A ticket that no key
// authenticates is ErrTicketInvalid, whatever it claims; a genuine ticket past its
// expiry is ErrTicketExpired, returned with its claims so the refusal can be logged
// with the user. Callers then check the claims against the login with
// TicketClaims.Check.
func VerifyTicket(keys []TicketKey, ticket []byte, now time.Time) (TicketClaims, error) {
	if len(ticket) < ticketMinLen || len(ticket) > MaxTicketLen {
		return TicketClaims{}, ErrTicketInvalid
	}
	body, mac := ticket[:len(ticket)-ticketMACLen], ticket[len(ticket)-ticketMACLen:]
	ok := false
	for i := range keys {
		// Keep going after a match so the time taken does not say which key matched.
		if hmac.Equal(ticketMAC(&keys[i], body), mac) {
			ok = true
		}
	}
	if !ok {
		return TicketClaims{}, ErrTicketInvalid
	}
	c, err := decodeTicketBody(body)
	if err != nil {
		return TicketClaims{}, err
	}
	if !now.Before(c.Expiry) {
		return c, fmt.Errorf("%w (expired %s ago)", ErrTicketExpired, now.Sub(c.Expiry).Round(time.Second))
	}
	return c, nil
}

// Check returns ErrTicketMismatch, naming the field, unless the claims are for user,
// hub and kind, and ErrTicketCredential unless they name the password cred
// (or none: a version 1 ticket).
func (c TicketClaims) Check(user, hub string, kind uint8, cred Credential) error {
	switch {
	case c.Hub != hub:
		return fmt.Errorf("%w: hub %q, not %q", ErrTicketMismatch, c.Hub, hub)
	case c.User != user:
		return fmt.Errorf("%w: user %q, not %q", ErrTicketMismatch, c.User, user)
	case c.Kind != kind:
		return fmt.Errorf("%w: session kind %d, not %d", ErrTicketMismatch, c.Kind, kind)
	}
	if c.Credential != (Credential{}) && c.Credential != cred {
		return ErrTicketCredential
	}
	return nil
}

func ticketMAC(key *TicketKey, body []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(ticketDomain)
	m.Write(body)
	return m.Sum(nil)
}

// decodeTicketBody parses an authenticated body. Authentication comes first, so a
// malformed body here means a key was used to MAC something that is not a ticket.
func decodeTicketBody(b []byte) (TicketClaims, error) {
	var c TicketClaims
	fixed := ticketFixed
	switch {
	case len(b) > 0 && b[0] == ticketVersionV1:
		fixed = ticketFixedV1
	case len(b) > 0 && b[0] == ticketVersion:
	default:
		return c, ErrTicketInvalid
	}
	if len(b) < fixed+2 {
		return c, ErrTicketInvalid
	}
	c.Kind = b[1]
	c.Expiry = time.UnixMilli(int64(binary.BigEndian.Uint64(b[2:10])))
	copy(c.SessionID[:], b[10:26])
	copy(c.Credential[:], b[ticketFixedV1:fixed])
	rest := b[fixed:]
	var ok bool
	if c.User, rest, ok = cutName(rest); !ok {
		return TicketClaims{}, ErrTicketInvalid
	}
	if c.Hub, rest, ok = cutName(rest); !ok || len(rest) != 0 {
		return TicketClaims{}, ErrTicketInvalid
	}
	return c, nil
}

func cutName(b []byte) (string, []byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], true
}
