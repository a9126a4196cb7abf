// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"strings"
	"testing"
	"time"
)

func okResult() *LoginResult {
	return &LoginResult{Code: OK, Version: Version, KeepaliveInterval: time.Second,
		DeadPeerTimeout: 3 * time.Second, MaxFrame: DefaultMaxFrame}
}

func roundTripResult(t *testing.T, r *LoginResult) (*LoginResult, error) {
	t.Helper()
	b := encodeLoginResult(r)
	return decodeLoginResult(b[headerLen:])
}

func TestUDPParamsRoundTrip(t *testing.T) {
	r := okResult()
	r.Capabilities = CapGSO | CapUDP
	r.UDP = &UDPParams{Port: 8443, Session: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Suite: 2}
	got, err := roundTripResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if got.UDP == nil || *got.UDP != *r.UDP || got.Capabilities != r.Capabilities {
		t.Fatalf("got %+v caps %#x", got.UDP, got.Capabilities)
	}
	// A member that did not grant CapUDP sends no parameters.
	r.Capabilities = CapGSO
	if got, err = roundTripResult(t, r); err != nil || got.UDP != nil {
		t.Fatalf("without CapUDP: %+v %v", got.UDP, err)
	}
}

func TestUDPGrantWithoutParams(t *testing.T) {
	r := okResult()
	r.Capabilities = CapUDP
	if _, err := roundTripResult(t, r); err == nil || !strings.Contains(err.Error(), "without UDP parameters") {
		t.Fatalf("CapUDP without parameters: %v", err)
	}
	r.UDP = &UDPParams{Suite: 1}
	r.Capabilities = CapUDP | CapUDPChaCha
	if _, err := roundTripResult(t, r); err == nil {
		t.Fatal("a granted CapUDPChaCha was accepted")
	}
}

// An old client never offers CapUDP; the tag is skipped by a client that
// predates it (walkFields skips unknown tags), which this checks by
// decoding a result with an unknown tag 12 payload in an old layout.
func TestUDPOldPeers(t *testing.T) {
	body := encodeLoginResult(okResult())[headerLen:]
	body = appendField(body, 99, []byte{1, 2, 3})
	if _, err := decodeLoginResult(body); err != nil {
		t.Fatalf("unknown tag: %v", err)
	}
	req := &LoginRequest{Hub: "h", Kind: KindClient, Version: Version, MinVersion: MinVersion, Capabilities: CapGSO | CapUDP | CapUDPChaCha}
	got, err := decodeLoginRequest(encodeLoginRequest(req)[headerLen:])
	if err != nil || got.Capabilities != req.Capabilities {
		t.Fatalf("request capabilities %#x, %v", got.Capabilities, err)
	}
}
