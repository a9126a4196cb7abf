// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package auth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testKey(b byte) TicketKey {
	var k TicketKey
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func issue(t *testing.T, k TicketKey, c TicketClaims) []byte {
	t.Helper()
	tk, err := IssueTicket(k, c, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTicketRoundTripOnAnyMember(t *testing.T) {
	k := testKey(1)
	cred := CredentialDigest("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")
	c := TicketClaims{User: "alice", Hub: "default/vpn", Kind: 2, SessionID: [16]byte{1, 2, 3}, Credential: cred}
	tk := issue(t, k, c)
	// Another member holds only the shared key.
	got, err := VerifyTicket([]TicketKey{k}, tk, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	c.Expiry = t0.Add(DefaultTicketTTL)
	if !got.Expiry.Equal(c.Expiry) || got.User != c.User || got.Hub != c.Hub || got.Kind != c.Kind || got.SessionID != c.SessionID || got.Credential != cred {
		t.Fatalf("claims = %+v, want %+v", got, c)
	}
	if err := got.Check("alice", "default/vpn", 2, cred); err != nil {
		t.Fatal(err)
	}
}

// A ticket names the password it was issued under: once the administrator
// changes the password, the ticket lets nobody in, and the error says why.
func TestTicketOutlivesNoPasswordChange(t *testing.T) {
	k := testKey(1)
	old, changed := CredentialDigest("$argon2id$v=19$m=19456,t=2,p=1$b2xk$b2xk"), CredentialDigest("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3")
	if old == changed {
		t.Fatal("two password hashes have the same credential digest")
	}
	got, err := VerifyTicket([]TicketKey{k}, issue(t, k, TicketClaims{User: "alice", Hub: "h", Kind: 1, Credential: old}), t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Check("alice", "h", 1, changed); !errors.Is(err, ErrTicketCredential) || !strings.Contains(err.Error(), "new password") {
		t.Fatalf("after a password change: %v, want ErrTicketCredential", err)
	}
	if err := got.Check("alice", "h", 1, old); err != nil {
		t.Fatalf("same password: %v", err)
	}
}

// A version 1 ticket (issued before tickets named the password, by a member
// not yet upgraded) still verifies for the minutes it lives, binding none.
func TestVersion1TicketStillVerifies(t *testing.T) {
	k := testKey(1)
	body := []byte{1, 1}
	body = binary.BigEndian.AppendUint64(body, uint64(t0.Add(time.Minute).UnixMilli()))
	body = append(body, make([]byte, 16)...)
	body = append(body, 5)
	body = append(body, "alice"...)
	body = append(body, 1, 'h')
	tk := append(body, ticketMAC(&k, body)...)
	got, err := VerifyTicket([]TicketKey{k}, tk, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "alice" || got.Hub != "h" || got.Credential != (Credential{}) {
		t.Fatalf("claims = %+v", got)
	}
	if err := got.Check("alice", "h", 1, CredentialDigest("anything")); err != nil {
		t.Fatalf("a version 1 ticket: %v, want accepted", err)
	}
}

func TestTicketExpiry(t *testing.T) {
	k := testKey(1)
	tk := issue(t, k, TicketClaims{User: "u", Hub: "h", Kind: 1, Expiry: t0.Add(30 * time.Second)})
	if _, err := VerifyTicket([]TicketKey{k}, tk, t0.Add(29*time.Second)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	for _, at := range []time.Duration{30 * time.Second, time.Hour} {
		_, err := VerifyTicket([]TicketKey{k}, tk, t0.Add(at))
		if !errors.Is(err, ErrTicketExpired) || errors.Is(err, ErrTicketInvalid) {
			t.Fatalf("at +%v: err = %v, want ErrTicketExpired only", at, err)
		}
	}
}

func TestTicketForgeryDetected(t *testing.T) {
	k := testKey(1)
	tk := issue(t, k, TicketClaims{User: "bob", Hub: "ns/hub", Kind: 1})
	for i := range tk {
		bad := bytes.Clone(tk)
		bad[i] ^= 0x40
		if _, err := VerifyTicket([]TicketKey{k}, bad, t0); !errors.Is(err, ErrTicketInvalid) {
			t.Fatalf("byte %d flipped: err = %v, want ErrTicketInvalid", i, err)
		}
	}
	for _, bad := range [][]byte{nil, tk[:len(tk)-1], append(bytes.Clone(tk), 0)} {
		if _, err := VerifyTicket([]TicketKey{k}, bad, t0); !errors.Is(err, ErrTicketInvalid) {
			t.Fatalf("%d-byte ticket: err = %v, want ErrTicketInvalid", len(bad), err)
		}
	}
	// An expired forgery must say invalid, not expired: the claims are not to be trusted.
	bad := bytes.Clone(tk)
	bad[len(bad)-1] ^= 1
	if _, err := VerifyTicket([]TicketKey{k}, bad, t0.Add(time.Hour)); !errors.Is(err, ErrTicketInvalid) {
		t.Fatalf("expired forgery: err = %v, want ErrTicketInvalid", err)
	}
}

func TestTicketKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(100)
	tk := issue(t, oldKey, TicketClaims{User: "u", Hub: "h", Kind: 1})
	if _, err := VerifyTicket([]TicketKey{newKey, oldKey}, tk, t0); err != nil {
		t.Fatalf("ticket from the previous key during rotation: %v", err)
	}
	if _, err := VerifyTicket([]TicketKey{newKey}, tk, t0); !errors.Is(err, ErrTicketInvalid) {
		t.Fatalf("after the old key is dropped: err = %v, want ErrTicketInvalid", err)
	}
	if _, err := VerifyTicket(nil, tk, t0); !errors.Is(err, ErrTicketInvalid) {
		t.Fatalf("no keys: err = %v, want ErrTicketInvalid", err)
	}
}

func TestTicketBoundToUserHubAndKind(t *testing.T) {
	c := TicketClaims{User: "alice", Hub: "team-a/vpn", Kind: 1}
	for _, w := range []struct {
		user, hub string
		kind      uint8
		field     string
	}{
		{"alice", "team-b/vpn", 1, "hub"},
		{"mallory", "team-a/vpn", 1, "user"},
		{"alice", "team-a/vpn", 2, "kind"},
	} {
		err := c.Check(w.user, w.hub, w.kind, Credential{})
		if !errors.Is(err, ErrTicketMismatch) || !strings.Contains(err.Error(), w.field) {
			t.Fatalf("Check(%q, %q, %d) = %v, want ErrTicketMismatch naming %s", w.user, w.hub, w.kind, err, w.field)
		}
	}
}

func TestTicketRefusesOverlongNames(t *testing.T) {
	_, err := IssueTicket(testKey(1), TicketClaims{User: strings.Repeat("u", 256), Hub: "h"}, t0)
	if err == nil || !strings.Contains(err.Error(), "255") {
		t.Fatalf("err = %v, want a refusal naming the 255-byte limit", err)
	}
	tk, err := IssueTicket(testKey(1), TicketClaims{User: strings.Repeat("u", 255), Hub: strings.Repeat("h", 255)}, t0)
	if err != nil || len(tk) != MaxTicketLen {
		t.Fatalf("longest names: len %d err %v, want %d bytes", len(tk), err, MaxTicketLen)
	}
}
