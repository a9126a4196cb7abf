// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/certs"
	"github.com/hubfleet/hubfleet/pkg/protocol"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// TestCAFilePinsByFingerprint: Kubernetes TLS Secrets keep the CA apart (ca.crt), so
// the member must send it for `hubfleet connect --ca-fingerprint <CA>` to work — the
// way `kubectl get vpncluster -o jsonpath={.status.caFingerprint}` tells users to.
func TestCAFilePinsByFingerprint(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t)
	ca, kp, caPEM := pki.CA, pki.Server, pki.CAPEM
	write(t, filepath.Join(dir, "leaf.crt"), kp.CertPEM) // the leaf alone, as in a TLS Secret
	write(t, filepath.Join(dir, "tls.key"), kp.KeyPEM)
	write(t, filepath.Join(dir, "ca.crt"), caPEM)
	pin, err := protocol.ClientTLSConfig(protocol.ClientTLSOptions{Fingerprint: certs.FingerprintSHA256(ca.Cert.Raw)})
	if err != nil {
		t.Fatal(err)
	}

	login := func(caFile string) error {
		cfg := baseConfig(t, dir)
		cfg.CertFile, cfg.CAFile = filepath.Join(dir, "leaf.crt"), caFile
		srv, err := New(cfg, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, err := protocol.Dial(ctx, ln.Addr().String(), pin, pw("alpha", "alice", "alice-pw"))
		if err == nil {
			conn.Close()
		}
		return err
	}

	if err := login(filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatalf("with caFile, a client pinning the CA fingerprint was refused: %v", err)
	}
	err = login("")
	if err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("without caFile the leaf alone cannot match a CA pin; got %v", err)
	}
	// A caFile that is not a certificate is a clear configuration error.
	write(t, filepath.Join(dir, "bad.crt"), []byte("not a certificate"))
	cfg := baseConfig(t, dir)
	cfg.CertFile, cfg.CAFile = filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "bad.crt")
	if _, err := New(cfg, Options{Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "caFile") {
		t.Fatalf("a bad caFile was accepted or not named: %v", err)
	}
}
