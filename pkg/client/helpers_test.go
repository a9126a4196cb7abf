// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/certs"
	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// testMember is a tiny member on loopback: it answers each login with what
// decide returns and hands OK sessions to the test.
type testMember struct {
	t        testing.TB
	ln       net.Listener
	caFile   string
	decide   func(n int, req *protocol.LoginRequest) *protocol.LoginResult
	mu       sync.Mutex
	logins   []protocol.LoginRequest
	sessions chan *protocol.Conn
	// silentFirst: the first session gets no keepalives, as from a member
	// whose node vanished without closing its connections.
	silentFirst bool
}

func newTestMember(t testing.TB, decide func(n int, req *protocol.LoginRequest) *protocol.LoginResult) *testMember {
	t.Helper()
	ca, err := certs.NewCA("client test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssueServer([]string{"member-0"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", protocol.ServerTLSConfig(cert, nil))
	if err != nil {
		t.Fatal(err)
	}
	m := &testMember{t: t, ln: ln, caFile: caFile, decide: decide, sessions: make(chan *protocol.Conn, 16)}
	go m.serve()
	t.Cleanup(func() { ln.Close() })
	return m
}

func (m *testMember) addr() string { return m.ln.Addr().String() }

func (m *testMember) serve() {
	for {
		nc, err := m.ln.Accept()
		if err != nil {
			return
		}
		go m.handle(nc)
	}
}

func (m *testMember) handle(nc net.Conn) {
	if err := nc.(*tls.Conn).Handshake(); err != nil {
		nc.Close()
		return
	}
	req, err := protocol.ReadLogin(nc)
	if err != nil {
		nc.Close()
		return
	}
	m.mu.Lock()
	n := len(m.logins)
	m.logins = append(m.logins, *req)
	m.mu.Unlock()
	res := m.decide(n, req)
	if err := protocol.WriteResult(nc, res); err != nil || res.Code != protocol.OK {
		nc.Close()
		return
	}
	conn := protocol.NewConn(nc, res.ConnConfig())
	if !(m.silentFirst && n == 0) {
		go conn.RunKeepalive(context.Background())
	}
	m.sessions <- conn
}

// loginsSoFar copies the logins received.
func (m *testMember) loginsSoFar() []protocol.LoginRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]protocol.LoginRequest(nil), m.logins...)
}

// nextSession waits for the next OK session.
func (m *testMember) nextSession() *protocol.Conn {
	m.t.Helper()
	select {
	case c := <-m.sessions:
		m.t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		m.t.Fatal("no session reached the member within 10s")
		return nil
	}
}

func ok(ticket string) *protocol.LoginResult {
	return &protocol.LoginResult{Code: protocol.OK, Ticket: []byte(ticket), TicketExpiry: time.Now().Add(time.Hour),
		SessionID: [16]byte{0x1a, 0x2b, 0x3c, 0x4d}}
}

func refuse(code protocol.Code, msg string) *protocol.LoginResult {
	return &protocol.LoginResult{Code: code, Message: msg}
}

// pipeTAP is a TAP device in memory: frames sent on in are read by the client,
// frames the client writes arrive on out.
type pipeTAP struct {
	in, out   chan []byte
	closeOnce sync.Once
	closed    chan struct{}
}

func newPipeTAP() *pipeTAP {
	return &pipeTAP{in: make(chan []byte, 256), out: make(chan []byte, 256), closed: make(chan struct{})}
}

func (p *pipeTAP) Name() string            { return "pipe0" }
func (p *pipeTAP) MTU() int                { return 1500 }
func (p *pipeTAP) BatchSize() int          { return 8 }
func (p *pipeTAP) Offload() ethdev.Offload { return ethdev.Offload{} }

// Read blocks for one frame, then takes what else is waiting, as a TAP's
// Read does.
func (p *pipeTAP) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case f := <-p.in:
		sizes[0] = copy(bufs[0][offset:], f)
	case <-p.closed:
		return 0, io.EOF
	}
	n := 1
	for ; n < len(bufs); n++ {
		select {
		case f := <-p.in:
			sizes[n] = copy(bufs[n][offset:], f)
		default:
			return n, nil
		}
	}
	return n, nil
}
func (p *pipeTAP) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		select {
		case p.out <- append([]byte(nil), b[offset:]...):
		case <-p.closed:
			return i, io.ErrClosedPipe
		}
	}
	return len(bufs), nil
}
func (p *pipeTAP) Close() error { p.closeOnce.Do(func() { close(p.closed) }); return nil }

// runClient starts Run against m with dev and returns its result channel; the
// client is stopped at the end of the test.
func runClient(t testing.TB, m *testMember, dev *pipeTAP, status io.Writer, tweak func(*Options)) <-chan error {
	t.Helper()
	opts := Options{
		Server: m.addr(), Hub: "blue", User: "alice", Password: "secret", Kind: sessionkind.Client,
		CAFile: m.caFile, Status: status,
	}
	if dev != nil {
		opts.Device = dev
	}
	if tweak != nil {
		tweak(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, exited := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(exited)
		done <- Run(ctx, opts)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	})
	return done
}

// recvFrame waits for a frame on ch.
func recvFrame(t *testing.T, ch <-chan []byte, what string) []byte {
	t.Helper()
	select {
	case f := <-ch:
		return f
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		return nil
	}
}

// memberFrame reads one frame from a member-side session.
func memberFrame(t *testing.T, c *protocol.Conn) []byte {
	t.Helper()
	var got []byte
	if _, err := c.ReadFrames(func(f []byte) {
		if got == nil {
			got = append([]byte(nil), f...)
		}
	}); err != nil {
		t.Fatalf("member reading frames: %v", err)
	}
	return got
}
