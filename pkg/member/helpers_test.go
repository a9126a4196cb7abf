// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/protocol"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// cheapParams keep tests fast; the cost is part of the hash, so the member
// verifies these as cheaply. Benchmarks use auth.DefaultParams.
var cheapParams = auth.Params{Memory: 64, Time: 1, Threads: 1}

// hashPW hashes pw once per test binary: an administrator stores one hash
// of a password, and a member ends the sessions of a user whose stored hash
// changed (a new salt is a changed password to it), so configurations a
// test applies again must carry the same hash.
func hashPW(t testing.TB, pw string) string {
	t.Helper()
	if h, ok := pwHashes.Load(pw); ok {
		return h.(string)
	}
	h, err := auth.HashPasswordWith(pw, cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := pwHashes.LoadOrStore(pw, h)
	return h2.(string)
}

var pwHashes sync.Map

// writePKI writes a throwaway cluster CA's member certificate (leaf + CA) and
// key into dir and returns the pool clients trust.
func writePKI(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	pki := testutil.NewPKI(t)
	pki.WriteServer(t, dir)
	return pki.Pool
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testMember is a member serving on a loopback port.
type testMember struct {
	srv    *Server
	addr   string
	dir    string
	client *tls.Config
	served chan error
}

// baseConfig has hub "alpha" (user alice/alice-pw, bob/bob-pw) and hub "beta"
// (user carol/carol-pw).
func baseConfig(t testing.TB, dir string) *Config {
	return &Config{
		Listen:   "127.0.0.1:0",
		CertFile: filepath.Join(dir, "tls.crt"),
		KeyFile:  filepath.Join(dir, "tls.key"),
		Name:     "member-test",
		Hubs: []HubConfig{
			{Name: "alpha", Type: HubStatic, Users: map[string]string{"alice": hashPW(t, "alice-pw"), "bob": hashPW(t, "bob-pw")}},
			{Name: "beta", Type: HubDynamic, Users: map[string]string{"carol": hashPW(t, "carol-pw")}},
		},
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startMember serves a member on 127.0.0.1; edit changes baseConfig first.
func startMember(t testing.TB, edit func(*Config)) *testMember {
	t.Helper()
	return startMemberOpts(t, edit, Options{})
}

// startMemberOpts is startMember with the routing hooks of opts.
func startMemberOpts(t testing.TB, edit func(*Config), opts Options) *testMember {
	t.Helper()
	dir := t.TempDir()
	pool := writePKI(t, dir)
	cfg := baseConfig(t, dir)
	if edit != nil {
		edit(cfg)
	}
	opts.Logger = testLogger(t)
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := protocol.ClientTLSConfig(protocol.ClientTLSOptions{CAPool: pool})
	if err != nil {
		t.Fatal(err)
	}
	m := &testMember{srv: srv, addr: ln.Addr().String(), dir: dir, client: clientTLS, served: make(chan error, 1)}
	go func() { m.served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

// client is a logged-in test session whose frames arrive on rx.
type client struct {
	conn *protocol.Conn
	res  *protocol.LoginResult
	rx   chan []byte
	end  chan error // the reader's final error
}

func (m *testMember) login(req protocol.LoginRequest) (*protocol.Conn, *protocol.LoginResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if req.Kind == 0 {
		req.Kind = protocol.KindClient
	}
	return protocol.Dial(ctx, m.addr, m.client, req)
}

// connect logs in and starts the session's reader and keepalive.
func (m *testMember) connect(t testing.TB, req protocol.LoginRequest) *client {
	t.Helper()
	conn, res, err := m.login(req)
	if err != nil {
		t.Fatalf("login to hub %q as %q: %v", req.Hub, req.User, err)
	}
	c := &client{conn: conn, res: res, rx: make(chan []byte, 4096), end: make(chan error, 1)}
	go func() { _ = conn.RunKeepalive(context.Background()) }()
	go func() {
		for {
			_, err := conn.ReadFrames(func(f []byte) { c.rx <- bytes.Clone(f) })
			if err != nil {
				c.end <- err
				return
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c
}

func pw(hub, user, password string) protocol.LoginRequest {
	return protocol.LoginRequest{Hub: hub, User: user, Password: password, Kind: protocol.KindClient}
}

func (c *client) send(t testing.TB, frames ...[]byte) {
	t.Helper()
	if err := c.conn.WriteFrames(frames); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

// expect fails unless the next frame c receives is want.
func (c *client) expect(t testing.TB, want []byte) {
	t.Helper()
	select {
	case got := <-c.rx:
		if !bytes.Equal(got, want) {
			t.Fatalf("received frame\n %x\nwant\n %x", got, want)
		}
	case err := <-c.end:
		t.Fatalf("session ended while waiting for a frame: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatalf("no frame within 5s, want %x", want)
	}
}

// expectEnd waits for the session to end and returns the reader's error.
func (c *client) expectEnd(t testing.TB, within time.Duration) error {
	t.Helper()
	for {
		select {
		case <-c.rx: // frames in flight before the end
		case err := <-c.end:
			return err
		case <-time.After(within):
			t.Fatalf("session still open after %v", within)
		}
	}
}

func mac(last byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, last} }

var broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// eth builds an Ethernet frame; payload makes each test frame distinct.
func eth(dst, src [6]byte, payload string) []byte {
	b := make([]byte, 0, 14+len(payload))
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	b = append(b, 0x88, 0xb5) // local experimental EtherType
	return append(b, payload...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// loginErr returns the *LoginError of a refused login.
func loginErr(t testing.TB, err error) *protocol.LoginError {
	t.Helper()
	le, ok := errors.AsType[*protocol.LoginError](err)
	if !ok {
		t.Fatalf("want a login refusal, got %v", err)
	}
	return le
}

func (m *testMember) hubStats(t testing.TB, name string) HubStats {
	t.Helper()
	for _, h := range m.srv.Stats().Hubs {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("hub %q not in stats", name)
	return HubStats{}
}
