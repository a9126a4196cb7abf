// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ServerTLSConfig is the member's listener configuration: TLS 1.3 only, ALPN
// hubfleet/1 required. With clientCAs, a client certificate signed by one of them is
// verified when presented (client-certificate login, member mTLS); set ClientAuth to
// tls.RequireAndVerifyClientCert on the result for links that must present one.
func ServerTLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		NextProtos:         []string{ALPN},
		GetConfigForClient: refuseWithoutALPN,
		VerifyConnection:   checkALPN,
	}
	if clientCAs != nil {
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c
}

// SessionTicketKey derives the key a member encrypts TLS session tickets with from
// the cluster's shared resumption-ticket secret. Every member derives the same key,
// so a client resumes its TLS session (PSK with a fresh (EC)DHE exchange: no
// certificate signature on the member, no chain verification beyond the client's
// own VerifyConnection) on whichever member it reaches after a failover. The
// label keeps the TLS key apart from the login-ticket HMAC key it comes from.
func SessionTicketKey(secret [32]byte) [32]byte {
	k, err := hkdf.Key(sha256.New, secret[:], nil, "hubfleet/1 TLS session ticket key", 32)
	if err != nil {
		panic("protocol: HKDF of a 32-byte key failed: " + err.Error()) // cannot happen for 32 bytes of SHA-256
	}
	return [32]byte(k)
}

// ClientSessionCacheSize is how many TLS sessions ClientTLSConfig's cache keeps,
// one per server name: a client talks to one cluster, a member's mesh links to a
// few dozen peers.
const ClientSessionCacheSize = 64

// noALPNAlert is a plaintext TLS record holding a fatal no_application_protocol
// alert (RFC 8446 6.2, RFC 7301 3.2): content type 21, legacy version 3.3,
// length 2, level fatal, description 120.
var noALPNAlert = []byte{21, 3, 3, 0, 2, 2, 120}

// refuseWithoutALPN refuses a ClientHello that offers no ALPN protocol with the
// no_application_protocol alert. crypto/tls negotiates no protocol for such a
// client and goes on; checkALPN would then refuse it with bad_certificate,
// which sends whoever debugs the client (curl, openssl s_client, a
// load-balancer health check) to look at certificates. crypto/tls cannot be
// told which alert to send from a callback, so the alert is written here,
// before any handshake record, and the handshake is then failed; the
// internal_error alert crypto/tls adds after it arrives once the client has
// already given up.
func refuseWithoutALPN(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if len(hello.SupportedProtos) > 0 {
		return nil, nil // no match with ALPN is refused by crypto/tls with no_application_protocol
	}
	if hello.Conn != nil {
		_, _ = hello.Conn.Write(noALPNAlert)
	}
	return nil, fmt.Errorf("client offered no ALPN protocol, want %q: it is not a hubfleet client (refused with no_application_protocol)", ALPN)
}

func checkALPN(cs tls.ConnectionState) error {
	if cs.NegotiatedProtocol != ALPN {
		return fmt.Errorf("peer did not negotiate ALPN %q (got %q): it is not a hubfleet endpoint, or speaks an incompatible protocol", ALPN, cs.NegotiatedProtocol)
	}
	return nil
}

// ClientTLSOptions say how a client trusts the cluster.
type ClientTLSOptions struct {
	// CAFile is a PEM file of CA certificates (the cluster CA); CAPool is the same
	// already loaded. Both may be given; neither means the system roots.
	CAFile string
	CAPool *x509.CertPool
	// Fingerprint pins the SHA-256 of the server's leaf certificate or of a CA
	// certificate in its chain, as hex (colons and case ignored), such as
	// `openssl x509 -noout -fingerprint -sha256` prints. Pinning a CA requires the
	// server to send the CA in its chain, as members do.
	Fingerprint string
	// ServerName is sent as SNI and, when set, must be a name in the server's
	// certificate. Without it a certificate chaining to the configured CA or pin is
	// accepted under any name: a cluster CA signs only its own members. With
	// neither CA nor pin, the system roots verify the name being dialled.
	ServerName string
	// Certificate is presented for client-certificate login or member mTLS.
	Certificate *tls.Certificate
}

// ClientTLSConfig builds a client configuration: TLS 1.3 only, ALPN hubfleet/1,
// trust per opts.
func ClientTLSConfig(opts ClientTLSOptions) (*tls.Config, error) {
	pool := opts.CAPool
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the cluster CA: %w", err)
		}
		if pool == nil {
			pool = x509.NewCertPool()
		} else {
			pool = pool.Clone()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate: give the cluster CA certificate (ca.crt of the cluster's TLS Secret)", opts.CAFile)
		}
	}
	var pin []byte
	if opts.Fingerprint != "" {
		var err error
		if pin, err = ParseFingerprint(opts.Fingerprint); err != nil {
			return nil, err
		}
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ALPN},
		ServerName: opts.ServerName,
	}
	if opts.Certificate != nil {
		// No session cache with a client certificate: a resumed session would
		// carry the certificate verified at the first handshake past a change of
		// the peer's trusted CAs. Such links (member mTLS) are long-lived and
		// reconnect rarely, so full handshakes cost little there.
		conf.Certificates = []tls.Certificate{*opts.Certificate}
	} else {
		// Reconnects resume the TLS session, which saves the member the
		// certificate signature (members share ticket keys: SessionTicketKey).
		// VerifyConnection still runs on a resumed session, against the
		// certificates of the original handshake.
		conf.ClientSessionCache = tls.NewLRUClientSessionCache(ClientSessionCacheSize)
	}
	if pool == nil && pin == nil {
		conf.VerifyConnection = checkALPN
		return conf, nil
	}
	// The standard verification always checks the dialled name, which a member
	// behind a Service or load balancer address often lacks; verifyServer does the
	// chain and pin checks itself, so the default is switched off, not skipped.
	conf.InsecureSkipVerify = true
	name := opts.ServerName
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := checkALPN(cs); err != nil {
			return err
		}
		return verifyServer(cs.PeerCertificates, pool, pin, name)
	}
	return conf, nil
}

func verifyServer(certs []*x509.Certificate, pool *x509.CertPool, pin []byte, name string) error {
	if len(certs) == 0 {
		return errors.New("server sent no certificate")
	}
	leaf := certs[0]
	if pin != nil && bytes.Equal(sum(leaf), pin) {
		return nil // the handshake proved the server holds the pinned key
	}
	opts := x509.VerifyOptions{
		Roots:         pool,
		Intermediates: x509.NewCertPool(),
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	var pinned *x509.Certificate
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
		if pin != nil && bytes.Equal(sum(c), pin) {
			pinned = c
		}
	}
	if pool == nil {
		if pinned == nil {
			return fmt.Errorf("no certificate the server sent matches the pinned fingerprint %s (its certificate is %s): check the fingerprint against the cluster CA", hex.EncodeToString(pin), Fingerprint(leaf))
		}
		opts.Roots = x509.NewCertPool()
		opts.Roots.AddCert(pinned)
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return fmt.Errorf("server certificate %q is not signed by the cluster CA: %w", leaf.Subject.CommonName, err)
	}
	if pin == nil || pinned != nil {
		return nil
	}
	for _, chain := range chains {
		for _, c := range chain {
			if bytes.Equal(sum(c), pin) {
				return nil
			}
		}
	}
	return fmt.Errorf("server certificate chains to the CA but matches none of the pinned fingerprint %s", hex.EncodeToString(pin))
}

func sum(c *x509.Certificate) []byte {
	s := sha256.Sum256(c.Raw)
	return s[:]
}

// Fingerprint is the SHA-256 of a certificate in lowercase hex, the form
// ClientTLSOptions.Fingerprint takes.
func Fingerprint(c *x509.Certificate) string { return hex.EncodeToString(sum(c)) }

// ParseFingerprint decodes a SHA-256 fingerprint written as hex, with or without
// colons, in either case.
func ParseFingerprint(s string) ([]byte, error) {
	clean := s
	if i := strings.LastIndexByte(clean, '='); i >= 0 {
		clean = clean[i+1:] // openssl's "sha256 Fingerprint=AB:CD:..."
	}
	clean = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(clean), ":", ""))
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("fingerprint %q is not a SHA-256 in hex (64 hex digits, colons allowed): print one with `openssl x509 -noout -fingerprint -sha256 -in ca.crt`", s)
	}
	return b, nil
}
