// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package certs issues the certificates of a hubfleet cluster with nothing but
// crypto/x509: a cluster CA, the serving certificate clients verify, and the
// peer certificate members use for the member-to-member mTLS mesh.
//
// Keys are ECDSA P-256: small, fast to sign and verify in TLS 1.3 handshakes,
// and accepted by every TLS stack. The package knows nothing of Kubernetes;
// the operator stores its PEM output in Secrets.
package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Backdate is how far before "now" certificates become valid, so a member
// whose clock runs a little behind the operator's accepts a fresh one.
const Backdate = 5 * time.Minute

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// KeyPair is an issued certificate and its key, PEM-encoded.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed CA valid for validity from now.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(commonName, validity)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	// Path length 0: this CA signs leaf certificates only.
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// PEM returns the CA certificate and key, PEM-encoded (key as PKCS#8).
func (ca *CA) PEM() (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// ParseCA decodes a CA from PEM and checks that the key matches the
// certificate and the certificate is a CA.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA")
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block in the CA key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if k, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("CA key: %w", err)
		}
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA key is %T, want ECDSA", k)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("CA key does not match the CA certificate")
	}
	return &CA{Cert: cert, Key: key}, nil
}

// IssueServer issues a serving certificate for the given names and
// addresses, signed by ca. The first DNS name is also the common name.
func (ca *CA) IssueServer(dnsNames []string, ips []net.IP, validity time.Duration) (KeyPair, error) {
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	return ca.issue(cn, dnsNames, ips, validity, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
}

// IssuePeer issues a certificate for the member mesh: both client and server
// auth, because every member dials and accepts mesh links. name is the
// common name and only DNS name; members dial each other with
// tls.Config.ServerName set to it, so one certificate serves any pod address.
func (ca *CA) IssuePeer(name string, validity time.Duration) (KeyPair, error) {
	return ca.issue(name, []string{name}, nil, validity,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

func (ca *CA) issue(cn string, dnsNames []string, ips []net.IP, validity time.Duration, usage []x509.ExtKeyUsage) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	tmpl, err := template(cn, validity)
	if err != nil {
		return KeyPair{}, err
	}
	// A leaf never outlives its CA: a client would reject the chain anyway.
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.DNSNames = dnsNames
	tmpl.IPAddresses = ips
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return KeyPair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func template(cn string, validity time.Duration) (*x509.Certificate, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("validity %v must be positive", validity)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"hubfleet"}},
		NotBefore:    now.Add(-Backdate),
		NotAfter:     now.Add(validity),
	}, nil
}

// ParseCertificate decodes the first certificate of a PEM bundle.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	rest := certPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// RenewAt is when a certificate should be replaced: after two thirds of its
// lifetime, which leaves a third (30 days of a 90-day certificate) for the
// operator to be down or members to pick up the new files.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life * 2 / 3)
}

// NeedsRenewal reports whether the PEM certificate should be replaced at now:
// it is unreadable, or two thirds of its lifetime have passed.
func NeedsRenewal(certPEM []byte, now time.Time) bool {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return true
	}
	return !now.Before(RenewAt(cert))
}

// Verify checks that the PEM leaf certificate chains to ca and carries every
// DNS name in names, so the operator re-issues when the CA or the names
// changed (a new Service IP, a renamed Service).
func (ca *CA) Verify(certPEM []byte, names []string, now time.Time) error {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := cert.VerifyHostname(n); err != nil {
			return err
		}
	}
	return nil
}

// FingerprintSHA256 is the SHA-256 of a DER certificate as lowercase hex
// without colons: what `hubfleet connect --ca-fingerprint` takes.
func FingerprintSHA256(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return hex.EncodeToString(sum[:])
}

// FingerprintPEM is FingerprintSHA256 of the first certificate in certPEM.
func FingerprintPEM(certPEM []byte) (string, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return "", err
	}
	return FingerprintSHA256(cert.Raw), nil
}

// SameCertificate reports whether two PEM bundles start with the same
// certificate.
func SameCertificate(a, b []byte) bool {
	ca, err1 := ParseCertificate(a)
	cb, err2 := ParseCertificate(b)
	return err1 == nil && err2 == nil && bytes.Equal(ca.Raw, cb.Raw)
}
