// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
)

// A client that offers no ALPN (curl, openssl s_client, a TCP health check
// doing TLS) must be told the protocol is wrong, not that its certificate is:
// the alert is what such a client prints.
func TestClientWithoutALPNGetsNoApplicationProtocol(t *testing.T) {
	p := newPKI(t)
	served := make(chan struct{}, 1)
	s := startServer(t, ServerTLSConfig(p.server, nil), func(tc *tls.Conn) {
		served <- struct{}{}
		_, _ = tc.Write([]byte("served"))
	})
	for _, tc := range []struct {
		name  string
		alpn  []string
		alert string
	}{
		{"no ALPN", nil, "no application protocol"},
		{"another protocol", []string{"h2", "http/1.1"}, "no application protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := &tls.Config{RootCAs: p.pool, ServerName: "vpn.default.svc", MinVersion: tls.VersionTLS13, NextProtos: tc.alpn}
			c, err := tls.Dial("tcp", s.addr, conf)
			if err == nil {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 16))
			}
			if err == nil {
				t.Fatal("a client offering no hubfleet ALPN was served")
			}
			if _, ok := errors.AsType[tls.AlertError](err); !ok && !strings.Contains(err.Error(), "remote error") {
				t.Fatalf("handshake failed with %v, want a TLS alert from the server", err)
			}
			if !strings.Contains(err.Error(), tc.alert) || strings.Contains(err.Error(), "bad certificate") {
				t.Errorf("refused with %q, want the %q alert", err, tc.alert)
			}
		})
	}
	select {
	case <-served:
		t.Error("the server ran a session for a client without the hubfleet ALPN")
	default:
	}
	// A hubfleet client is still served.
	if cs, err := handshake(t, s.addr, clientConf(t, p)); err != nil || cs.NegotiatedProtocol != ALPN {
		t.Fatalf("hubfleet client: %v, ALPN %q", err, cs.NegotiatedProtocol)
	}
}
