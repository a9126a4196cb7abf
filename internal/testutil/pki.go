// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package testutil

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/certs"
)

// PKI is a throwaway cluster CA with a serving certificate for localhost,
// member-0.test and 127.0.0.1, valid for an hour: what the member and client tests
// need to speak real TLS on loopback.
type PKI struct {
	CA     *certs.CA
	CAPEM  []byte
	Server certs.KeyPair
	// Pool trusts CA, for clients.
	Pool *x509.CertPool
}

// NewPKI makes a PKI, failing t on error.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := certs.NewCA("hubfleet test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssueServer([]string{"localhost", "member-0.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &PKI{CA: ca, CAPEM: caPEM, Server: kp, Pool: pool}
}

// WriteServer writes the serving certificate as a member reads it: tls.crt (the
// leaf, then the CA), tls.key and ca.crt in dir.
func (p *PKI) WriteServer(t testing.TB, dir string) {
	t.Helper()
	for name, data := range map[string][]byte{
		"tls.crt": append(append([]byte{}, p.Server.CertPEM...), p.CAPEM...),
		"tls.key": p.Server.KeyPEM,
		"ca.crt":  p.CAPEM,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
