// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testPKI is a throwaway cluster CA and a member certificate it signed.
type testPKI struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	server tls.Certificate // leaf + CA, as members serve it
	leaf   *x509.Certificate
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hubfleet test cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, caKey: caKey, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server, p.leaf = p.issue(t, "member-0", []string{"vpn.default.svc"}, x509.ExtKeyUsageServerAuth)
	return p
}

func (p *testPKI) issue(t testing.TB, cn string, names []string, usage x509.ExtKeyUsage) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, p.ca.Raw}, PrivateKey: key, Leaf: leaf}, leaf
}

// server is a loopback listener running handle for each TLS connection after its
// handshake.
type server struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startServer(t testing.TB, conf *tls.Config, handle func(*tls.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), ln: ln}
	s.wg.Go(func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			TuneTCP(raw)
			raw = WrapTCP(raw)
			s.wg.Go(func() {
				tc := tls.Server(raw, conf)
				defer tc.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if tc.HandshakeContext(ctx) == nil {
					handle(tc)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// answer is a server handler that logs the client in with result and, on OK, hands
// the session to sessions.
func answer(result func(*LoginRequest) *LoginResult, sessions chan<- *Conn) func(*tls.Conn) {
	return func(tc *tls.Conn) {
		req, err := ReadLogin(tc)
		if le, ok := errors.AsType[*LoginError](err); ok {
			_ = WriteResult(tc, le.Result())
			return
		}
		if err != nil {
			return
		}
		res := result(req)
		if err := WriteResult(tc, res); err != nil || res.Code != OK {
			return
		}
		c := NewConn(tc, res.ConnConfig())
		sessions <- c
		<-c.Done()
	}
}

func clientConf(t testing.TB, p *testPKI) *tls.Config {
	t.Helper()
	conf, err := ClientTLSConfig(ClientTLSOptions{CAPool: p.pool})
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

var okLogin = LoginRequest{Hub: "default/vpn", User: "alice", Password: "pw", Kind: KindClient, ClientName: "test"}

// sessionPair logs a client in to a loopback member and returns both ends.
func sessionPair(t testing.TB, res LoginResult) (client, member *Conn) {
	t.Helper()
	return loginPair(t, okLogin, func(*LoginRequest) *LoginResult {
		r := res
		return &r
	})
}

// loginPair logs req in to a loopback server whose answer decides the result,
// and returns both ends of the session.
func loginPair(t testing.TB, req LoginRequest, answerFn func(*LoginRequest) *LoginResult) (client, member *Conn) {
	t.Helper()
	p := newPKI(t)
	sessions := make(chan *Conn, 1)
	s := startServer(t, ServerTLSConfig(p.server, nil), answer(answerFn, sessions))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := Dial(ctx, s.addr, clientConf(t, p), req)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case member = <-sessions:
	case <-ctx.Done():
		t.Fatal("member side of the session never started")
	}
	t.Cleanup(func() {
		client.Close()
		member.Close()
	})
	return client, member
}

// readResult is one ReadFrames call's outcome, delivered on a channel so tests can
// wait for it with a deadline.
type readResult struct {
	frames [][]byte
	err    error
}

// reader runs ReadFrames in a loop, sending each call's frames (copied) or its error.
func reader(c *Conn) <-chan readResult {
	out := make(chan readResult, 64)
	go func() {
		for {
			var got [][]byte
			_, err := c.ReadFrames(func(f []byte) { got = append(got, append([]byte(nil), f...)) })
			out <- readResult{got, err}
			if err != nil {
				close(out)
				return
			}
		}
	}()
	return out
}

func next(t testing.TB, ch <-chan readResult, within time.Duration) readResult {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("reader already stopped")
		}
		return r
	case <-time.After(within):
		t.Fatalf("nothing read within %v", within)
	}
	return readResult{}
}

// fakeConn is a net.Conn reading from a fixed byte stream, for fuzzing the decoders
// without a network.
type fakeConn struct {
	io.Reader
	out    bytes.Buffer // what was written
	closed bool
}

func (f *fakeConn) Write(b []byte) (int, error) {
	if f.closed {
		return 0, net.ErrClosed
	}
	return f.out.Write(b)
}
func (f *fakeConn) Close() error                     { f.closed = true; return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }
