// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEveryLoginCodeRoundTrips(t *testing.T) {
	p := newPKI(t)
	messages := map[Code]string{
		UnknownHub:         "no VirtualHub default/vpm: check the hub name",
		BadCredentials:     "wrong password for user alice",
		HubFull:            "hub default/vpn has 10 of 10 sessions",
		LicenseExhausted:   "cluster default/vpn has 2 of 2 client licenses in use",
		Redirect:           "hub lives on member-2",
		Relay:              "relaying to member-1",
		ShuttingDown:       "member-0 is draining",
		VersionUnsupported: "no common version",
		NotServedHere:      "hub default/vpn moved to member-3",
		Internal:           "informer not synced",
		BadRequest:         "hub name missing",
	}
	var want *LoginResult
	sessions := make(chan *Conn, 1)
	s := startServer(t, ServerTLSConfig(p.server, nil), answer(func(*LoginRequest) *LoginResult {
		r := *want
		return &r
	}, sessions))
	for code := OK; code <= BadRequest; code++ {
		t.Run(code.String(), func(t *testing.T) {
			want = &LoginResult{Code: code, Message: messages[code]}
			if code == Redirect {
				want.RedirectAddr = "10.0.0.7:443"
			}
			if code == OK {
				want.SessionID = [16]byte{1, 2, 3}
				want.Ticket = []byte("ticket bytes")
				want.TicketExpiry = time.UnixMilli(time.Now().Add(10 * time.Minute).UnixMilli())
			}
			c, res, err := Dial(dialCtx(t), s.addr, clientConf(t, p), okLogin)
			if code == OK {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				m := <-sessions
				defer m.Close()
				if res.SessionID != want.SessionID || !bytes.Equal(res.Ticket, want.Ticket) || !res.TicketExpiry.Equal(want.TicketExpiry) {
					t.Fatalf("result %+v, want session and ticket of %+v", res, want)
				}
				if res.KeepaliveInterval != DefaultKeepaliveInterval || res.DeadPeerTimeout != DefaultDeadPeerTimeout || res.MaxFrame != DefaultMaxFrame || res.Version != Version {
					t.Fatalf("defaults not applied: %+v", res)
				}
				return
			}
			le, ok := errors.AsType[*LoginError](err)
			if !ok || c != nil {
				t.Fatalf("err = %v (conn %v), want a *LoginError", err, c)
			}
			if le.Code != code || le.Message != messages[code] || res.Code != code || res.Message != messages[code] {
				t.Fatalf("got %v / %+v, want code %v with %q", le, res, code, messages[code])
			}
			if le.RedirectAddr != want.RedirectAddr || res.RedirectAddr != want.RedirectAddr {
				t.Fatalf("redirect address %q, want %q", le.RedirectAddr, want.RedirectAddr)
			}
		})
	}
}

func TestLoginErrorReadsAsOneLine(t *testing.T) {
	e := &LoginError{Code: LicenseExhausted, Message: "cluster default/vpn has 2 of 2 client licenses in use"}
	if got, want := e.Error(), "login refused: license exhausted: cluster default/vpn has 2 of 2 client licenses in use"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if got := Code(999).String(); got != "code 999" {
		t.Fatalf("unknown code prints %q", got)
	}
}

func TestVersionNegotiation(t *testing.T) {
	p := newPKI(t)
	sessions := make(chan *Conn, 1)
	s := startServer(t, ServerTLSConfig(p.server, nil), answer(func(*LoginRequest) *LoginResult {
		return &LoginResult{Code: OK}
	}, sessions))

	future := okLogin
	future.Version, future.MinVersion = 5, 3
	_, res, err := Dial(dialCtx(t), s.addr, clientConf(t, p), future)
	le, ok := errors.AsType[*LoginError](err)
	if !ok || le.Code != VersionUnsupported || le.ServerMinVersion != MinVersion || le.ServerMaxVersion != Version {
		t.Fatalf("err = %v (%+v), want VersionUnsupported naming the server's range", err, res)
	}
	if !strings.Contains(le.Error(), "3..5") || !strings.Contains(le.Error(), "upgrade") {
		t.Fatalf("%q should name both ranges and the fix", le.Error())
	}

	// A newer client that still speaks version 1 gets version 1.
	wide := okLogin
	wide.Version, wide.MinVersion = 4, 1
	c, res, err := Dial(dialCtx(t), s.addr, clientConf(t, p), wide)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := <-sessions
	defer m.Close()
	if res.Version != 1 {
		t.Fatalf("negotiated version %d, want 1", res.Version)
	}
}

func TestLoginRequestRoundTrip(t *testing.T) {
	in := LoginRequest{
		Version: 1, MinVersion: 1, Hub: "team-a/vpn", User: "bridge-1", Ticket: []byte{9, 8, 7},
		Kind: KindBridge, ClientName: "hubfleet-bridge/0.1 linux/arm64", MaxFrame: 9000,
		Relayed: true, RelayEntry: "vpn-member-0", RelayClientAddr: "203.0.113.9:50123",
		RelayUDPKeys: bytes.Repeat([]byte{0xa5}, 2*relayUDPKeyLen), Capabilities: CapUDP,
	}
	b := encodeLoginRequest(&in)
	out, err := decodeLoginRequest(b[headerLen:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*out, in) {
		t.Fatalf("decoded %+v, want %+v", *out, in)
	}
}

func TestMalformedLoginsAreBadRequests(t *testing.T) {
	cases := map[string]struct {
		req  LoginRequest
		want string
	}{
		"no hub":                  {LoginRequest{User: "u", Password: "p", Kind: KindClient}, "hub name missing"},
		"bad kind":                {LoginRequest{Hub: "h", User: "u", Password: "p", Kind: 7}, "session kind 7"},
		"two credentials":         {LoginRequest{Hub: "h", User: "u", Password: "p", Ticket: []byte{1}, Kind: KindClient}, "one credential"},
		"ticket, no user":         {LoginRequest{Hub: "h", Ticket: []byte{1}, Kind: KindClient}, "user name missing"},
		"tiny max frame":          {LoginRequest{Hub: "h", User: "u", Password: "p", Kind: KindClient, MaxFrame: 10}, "max frame 10"},
		"overlong user":           {LoginRequest{Hub: "h", User: strings.Repeat("u", 300), Password: "p", Kind: KindClient}, "user name is 300 bytes"},
		"overlong passwd":         {LoginRequest{Hub: "h", User: "u", Password: strings.Repeat("p", 2000), Kind: KindClient}, "password is 2000 bytes"},
		"invalid UTF-8":           {LoginRequest{Hub: "h\xff", User: "u", Password: "p", Kind: KindClient}, "not valid UTF-8"},
		"empty range":             {LoginRequest{Version: 1, MinVersion: 2, Hub: "h", Kind: KindClient}, "range 2..1 is empty"},
		"cert login is ok":        {LoginRequest{Hub: "h", Kind: KindClient}, ""},
		"client sends relay keys": {LoginRequest{Hub: "h", Kind: KindClient, RelayUDPKeys: make([]byte, relayUDPKeyLen)}, "not relayed"},
		"partial relay keys":      {LoginRequest{Hub: "h", Kind: KindClient, Relayed: true, RelayUDPKeys: make([]byte, 70)}, "relayed UDP keys of 70 bytes"},
		"too many relay keys":     {LoginRequest{Hub: "h", Kind: KindClient, Relayed: true, RelayUDPKeys: make([]byte, maxRelayUDPKeys+relayUDPKeyLen)}, "at most"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.req.Version == 0 {
				c.req.Version, c.req.MinVersion = 1, 1
			}
			b := encodeLoginRequest(&c.req)
			_, err := ReadLogin(&fakeConn{Reader: bytes.NewReader(b)})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			le, ok := errors.AsType[*LoginError](err)
			if !ok || le.Code != BadRequest || !strings.Contains(le.Message, c.want) {
				t.Fatalf("err = %v, want BadRequest mentioning %q", err, c.want)
			}
		})
	}
	// The client refuses to send what the server would refuse.
	if _, err := Login(context.Background(), &fakeConn{Reader: bytes.NewReader(nil)}, LoginRequest{Hub: "h", Kind: 9}); err == nil || !strings.Contains(err.Error(), "invalid login request") {
		t.Fatalf("Login with a bad kind: err = %v", err)
	}
}

func TestNonLoginFirstMessageIsBadRequest(t *testing.T) {
	_, err := ReadLogin(&fakeConn{Reader: bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n"))})
	if le, ok := errors.AsType[*LoginError](err); !ok || le.Code != BadRequest {
		t.Fatalf("err = %v, want BadRequest", err)
	}
}

func TestLoginRequestStringHidesCredentials(t *testing.T) {
	s := LoginRequest{Hub: "h", User: "u", Password: "hunter2", Kind: KindClient}.String()
	if strings.Contains(s, "hunter2") || !strings.Contains(s, "auth=password") {
		t.Fatalf("String() = %q", s)
	}
}

func TestLoginGivesUpWhenContextEnds(t *testing.T) {
	p := newPKI(t)
	release := make(chan struct{})
	defer close(release)
	received := make(chan struct{}, 1)
	s := startServer(t, ServerTLSConfig(p.server, nil), func(tc *tls.Conn) {
		if _, err := ReadLogin(tc); err == nil {
			received <- struct{}{}
		}
		<-release // never answers
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := Dial(ctx, s.addr, clientConf(t, p), okLogin)
		done <- err
	}()
	select {
	case <-received:
	case <-time.After(5 * time.Second):
		t.Fatal("the member never received the login")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dial did not return after its context was cancelled")
	}
}
