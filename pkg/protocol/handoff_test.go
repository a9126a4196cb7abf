// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"strings"
	"testing"
)

// The handoff token travels in the relayed login, in the OK result that
// grants CapHandoff and in the client's handoff login; a grant without a
// token is a protocol error, and the login checks refuse the combinations a
// member must never accept.
func TestHandoffWire(t *testing.T) {
	tok, err := NewHandoffToken()
	if err != nil {
		t.Fatal(err)
	}
	relayed := LoginRequest{Version: Version, MinVersion: MinVersion, Hub: "h", User: "u", Password: "pw", Kind: KindClient,
		Relayed: true, RelayEntry: "m0", Capabilities: CapHandoff | CapGSO, HandoffToken: tok}
	got, err := decodeLoginRequest(encodeLoginRequest(&relayed)[headerLen:])
	if err != nil || !bytes.Equal(got.HandoffToken, tok) {
		t.Fatalf("relayed login: %v, token %x", err, got.HandoffToken)
	}

	r := okResult()
	r.Capabilities, r.HandoffToken = CapHandoff, tok
	res, err := roundTripResult(t, r)
	if err != nil || !bytes.Equal(res.HandoffToken, tok) {
		t.Fatalf("result: %v, token %x", err, res.HandoffToken)
	}
	r.HandoffToken = nil
	if _, err := roundTripResult(t, r); err == nil || !strings.Contains(err.Error(), "handoff token of 0 bytes") {
		t.Fatalf("CapHandoff granted without a token: %v", err)
	}

	for name, c := range map[string]struct {
		req  LoginRequest
		want string
	}{
		"short token":        {LoginRequest{Hub: "h", User: "u", Kind: KindClient, HandoffToken: tok[:8]}, "handoff token of 8 bytes"},
		"relayed, no cap":    {LoginRequest{Hub: "h", User: "u", Kind: KindClient, Relayed: true, Password: "pw", HandoffToken: tok}, "must offer CapHandoff"},
		"handoff + password": {LoginRequest{Hub: "h", User: "u", Kind: KindClient, Password: "pw", HandoffToken: tok}, "not a password or ticket"},
	} {
		if msg := c.req.invalid(); !strings.Contains(msg, c.want) {
			t.Errorf("%s: invalid() = %q, want %q", name, msg, c.want)
		}
	}
	ok := LoginRequest{Hub: "h", User: "u", Kind: KindClient, Capabilities: CapGSO, HandoffToken: tok}
	if msg := ok.invalid(); msg != "" {
		t.Errorf("a client's handoff login: %q", msg)
	}
}
