// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// handshake dials s with conf and reports the handshake's outcome.
func handshake(t *testing.T, addr string, conf *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: conf}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

func idle(*tls.Conn) {}

func TestHandshakeIsTLS13WithALPN(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, ServerTLSConfig(p.server, nil), idle)
	cs, err := handshake(t, s.addr, clientConf(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != ALPN {
		t.Fatalf("version %x ALPN %q, want TLS 1.3 and %q", cs.Version, cs.NegotiatedProtocol, ALPN)
	}
}

func TestTLS12Refused(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, ServerTLSConfig(p.server, nil), idle)
	conf := clientConf(t, p)
	conf.MinVersion, conf.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := handshake(t, s.addr, conf); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.2 handshake: err = %v, want a protocol version failure", err)
	}
}

func TestClientWithoutALPNRefused(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, ServerTLSConfig(p.server, nil), func(tc *tls.Conn) {
		_, _ = tc.Write([]byte("served"))
	})
	conf := &tls.Config{RootCAs: p.pool, ServerName: "vpn.default.svc", MinVersion: tls.VersionTLS13}
	c, err := tls.Dial("tcp", s.addr, conf)
	if err == nil {
		// A TLS 1.3 client finishes its handshake before the server has judged it;
		// the refusal then arrives as an alert on the first read.
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 16))
	}
	if err == nil || !strings.Contains(err.Error(), "remote error") {
		t.Fatalf("a client offering no ALPN was served (err %v), want a TLS alert", err)
	}
}

func TestServerVerification(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	s := startServer(t, ServerTLSConfig(p.server, nil), idle)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	otherCAFile := filepath.Join(dir, "other.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherCAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	colons := func(hex string) string {
		var parts []string
		for i := 0; i < len(hex); i += 2 {
			parts = append(parts, strings.ToUpper(hex[i:i+2]))
		}
		return "sha256 Fingerprint=" + strings.Join(parts, ":")
	}
	cases := []struct {
		name    string
		opts    ClientTLSOptions
		refused string // substring of the error, "" when accepted
	}{
		{"CA file", ClientTLSOptions{CAFile: caFile}, ""},
		{"CA file, name in cert", ClientTLSOptions{CAFile: caFile, ServerName: "vpn.default.svc"}, ""},
		{"CA file, name not in cert", ClientTLSOptions{CAFile: caFile, ServerName: "evil.example"}, "not signed"},
		{"another cluster's CA", ClientTLSOptions{CAFile: otherCAFile}, "not signed by the cluster CA"},
		{"leaf pinned", ClientTLSOptions{Fingerprint: Fingerprint(p.leaf)}, ""},
		{"CA pinned, openssl format", ClientTLSOptions{Fingerprint: colons(Fingerprint(p.ca))}, ""},
		{"CA file and CA pin", ClientTLSOptions{CAFile: caFile, Fingerprint: Fingerprint(p.ca)}, ""},
		{"wrong pin", ClientTLSOptions{Fingerprint: Fingerprint(other.ca)}, "pinned fingerprint"},
		{"CA file and wrong pin", ClientTLSOptions{CAFile: caFile, Fingerprint: Fingerprint(other.ca)}, "pinned fingerprint"},
		{"system roots", ClientTLSOptions{}, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf, err := ClientTLSConfig(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = handshake(t, s.addr, conf)
			if c.refused == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)) {
				t.Fatalf("err = %v, want a refusal mentioning %q", err, c.refused)
			}
		})
	}
}

// A certificate the CA issued for client authentication is not a server
// certificate, even though it chains to the pinned CA.
func TestClientCertificateCannotImpersonateMember(t *testing.T) {
	p := newPKI(t)
	clientCert, _ := p.issue(t, "alice", nil, x509.ExtKeyUsageClientAuth)
	s := startServer(t, ServerTLSConfig(clientCert, nil), idle)
	conf, err := ClientTLSConfig(ClientTLSOptions{Fingerprint: Fingerprint(p.ca)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, s.addr, conf); err == nil {
		t.Fatal("a client-auth certificate was accepted as a member's")
	}
}

func TestBadTrustOptionsExplainThemselves(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.crt")
	if err := os.WriteFile(empty, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts ClientTLSOptions
		want string
	}{
		{ClientTLSOptions{CAFile: empty}, "no PEM certificate"},
		{ClientTLSOptions{CAFile: filepath.Join(t.TempDir(), "missing")}, "reading the cluster CA"},
		{ClientTLSOptions{Fingerprint: "abc"}, "64 hex digits"},
	} {
		if _, err := ClientTLSConfig(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.opts, err, c.want)
		}
	}
}

// TestSessionResumesOnAnyMember: members whose session-ticket keys derive from the
// same cluster secret resume each other's TLS sessions, so a reconnect after a
// failover skips the certificate signature; a member with another secret falls
// back to a full handshake; and the client's VerifyConnection runs every time.
func TestSessionResumesOnAnyMember(t *testing.T) {
	p := newPKI(t)
	member := func(secret byte) *server {
		conf := ServerTLSConfig(p.server, nil)
		conf.SetSessionTicketKeys([][32]byte{SessionTicketKey([32]byte{secret})})
		// The handler logs the client in and reads until the client closes, so
		// the server's cleanup never waits on a session nobody ends.
		return startServer(t, conf, func(tc *tls.Conn) {
			if _, err := ReadLogin(tc); err != nil {
				return
			}
			if WriteResult(tc, &LoginResult{Code: OK}) == nil {
				_, _ = io.Copy(io.Discard, tc)
			}
		})
	}
	a, b, other := member(1), member(1), member(2)
	conf := clientConf(t, p)
	verified := 0
	verify := conf.VerifyConnection
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		verified++
		return verify(cs)
	}
	dial := func(s *server) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Login reads the result, and with it the session ticket sent after the
		// handshake, so the cache holds it by the time Dial returns.
		c, _, err := Dial(ctx, s.addr, conf, okLogin)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.NetConn().(*tls.Conn).ConnectionState().DidResume
	}
	if dial(a) {
		t.Fatal("first connection resumed a session it never had")
	}
	if !dial(b) {
		t.Fatal("member b did not resume the session member a issued, with the same cluster secret")
	}
	if dial(other) {
		t.Fatal("a member with another cluster secret resumed the session")
	}
	if verified != 3 {
		t.Fatalf("VerifyConnection ran %d times for 3 connections, want every time, resumed or not", verified)
	}
}

func TestSessionTicketKeyIsLabelled(t *testing.T) {
	secret := [32]byte{7}
	k := SessionTicketKey(secret)
	if k == secret || k != SessionTicketKey(secret) || k == SessionTicketKey([32]byte{8}) {
		t.Fatal("SessionTicketKey must be deterministic, differ per secret and differ from the secret itself")
	}
}

func TestClientSessionCacheOnlyWithoutClientCertificate(t *testing.T) {
	p := newPKI(t)
	if clientConf(t, p).ClientSessionCache == nil {
		t.Fatal("a password client has no TLS session cache, so its reconnects cannot resume")
	}
	conf, err := ClientTLSConfig(ClientTLSOptions{CAPool: p.pool, Certificate: &p.server})
	if err != nil {
		t.Fatal(err)
	}
	if conf.ClientSessionCache != nil {
		t.Fatal("a client-certificate link resumes TLS sessions; its certificate would not be checked again against a changed CA")
	}
}
