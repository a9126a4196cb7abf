// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test-ca", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCAPEMRoundTrip(t *testing.T) {
	ca := newCA(t)
	c, k, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(c, k)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Fatal("CA changed in a PEM round trip")
	}
	other := newCA(t)
	_, otherKey, _ := other.PEM()
	if _, err := ParseCA(c, otherKey); err == nil {
		t.Fatal("ParseCA accepted a key that does not match the certificate")
	}
}

func TestIssueServerVerifiesWithTLS(t *testing.T) {
	ca := newCA(t)
	names := []string{"vpn", "vpn.ns.svc", "*.vpn-members.ns.svc", "localhost"}
	kp, err := ca.IssueServer(names, []net.IP{net.ParseIP("10.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(kp.CertPEM, []string{"vpn.ns.svc", "m-0.vpn-members.ns.svc", "10.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(kp.CertPEM, []string{"other.example"}, time.Now()); err == nil {
		t.Fatal("Verify accepted a name the certificate does not carry")
	}
	if err := newCA(t).Verify(kp.CertPEM, nil, time.Now()); err == nil {
		t.Fatal("Verify accepted a certificate from another CA")
	}
	if _, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM); err != nil {
		t.Fatalf("crypto/tls cannot load the issued pair: %v", err)
	}
	cert, _ := ParseCertificate(kp.CertPEM)
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("server certificate usages %v", cert.ExtKeyUsage)
	}
}

func TestIssuePeerIsClientAndServer(t *testing.T) {
	ca := newCA(t)
	kp, err := ca.IssuePeer("c-member", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ParseCertificate(kp.CertPEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "c-member", KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("peer certificate fails usage %v: %v", u, err)
		}
	}
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	ca := newCA(t)
	kp, err := ca.IssuePeer("p", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ParseCertificate(kp.CertPEM)
	if cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Fatalf("leaf expires %v after its CA %v", cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestNeedsRenewalAtTwoThirds(t *testing.T) {
	ca := newCA(t)
	kp, _ := ca.IssueServer([]string{"x"}, nil, 3*time.Hour)
	cert, _ := ParseCertificate(kp.CertPEM)
	at := RenewAt(cert)
	if NeedsRenewal(kp.CertPEM, at.Add(-time.Second)) {
		t.Error("renewal requested before two thirds of the lifetime")
	}
	if !NeedsRenewal(kp.CertPEM, at) {
		t.Error("no renewal at two thirds of the lifetime")
	}
	if !NeedsRenewal([]byte("garbage"), time.Now()) {
		t.Error("an unreadable certificate must be renewed")
	}
}

func TestFingerprint(t *testing.T) {
	ca := newCA(t)
	fp := FingerprintSHA256(ca.Cert.Raw)
	if len(fp) != 64 || strings.ToLower(fp) != fp || strings.Contains(fp, ":") {
		t.Fatalf("fingerprint %q is not 64 lowercase hex digits", fp)
	}
	c, _, _ := ca.PEM()
	if p, err := FingerprintPEM(c); err != nil || p != fp {
		t.Fatalf("FingerprintPEM = %q, %v; want %q", p, err, fp)
	}
	if !SameCertificate(c, c) || SameCertificate(c, []byte("x")) {
		t.Fatal("SameCertificate")
	}
}
