// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A frozen member's kernel completes TCP handshakes into the listen backlog
// (never accepted) or the process accepted and then stopped: either way the
// ClientHello is never answered. Dial must give up within HandshakeTimeout
// and say the member was silent.
func TestDialGivesUpOnSilentMember(t *testing.T) {
	for _, accept := range []bool{false, true} {
		name := map[bool]string{false: "never accepted", true: "accepted, never answered"}[accept]
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			var accepted atomic.Int32
			if accept {
				go func() {
					var held []net.Conn
					defer func() {
						for _, c := range held {
							c.Close()
						}
					}()
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						accepted.Add(1)
						held = append(held, c)
					}
				}()
			}
			conf := clientConf(t, newPKI(t))
			start := time.Now()
			conn, _, err := Dial(context.Background(), ln.Addr().String(), conf, okLogin)
			took := time.Since(start)
			if conn != nil {
				conn.Close()
				t.Fatal("Dial to a silent member returned a session")
			}
			if !errors.Is(err, ErrNoAnswer) {
				t.Fatalf("error %v does not say the member did not answer", err)
			}
			if took < HandshakeTimeout-100*time.Millisecond || took > HandshakeTimeout+2*time.Second {
				t.Fatalf("Dial gave up after %v; want about HandshakeTimeout (%v)", took, HandshakeTimeout)
			}
			if accept {
				if n := accepted.Load(); n != handshakeAttempts {
					t.Errorf("Dial made %d connections, want %d staggered ones", n, handshakeAttempts)
				}
			}
			t.Logf("gave up after %v: %v", took.Round(time.Millisecond), err)
		})
	}
}

// The caller's own deadline still wins when it is shorter, and its error is
// not reported as the member's silence.
func TestDialCallerDeadlineIsNotNoAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = Dial(ctx, ln.Addr().String(), clientConf(t, newPKI(t)), okLogin)
	if err == nil || errors.Is(err, ErrNoAnswer) {
		t.Fatalf("err = %v; want the caller's deadline, not ErrNoAnswer", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Dial ignored the caller's 200ms deadline: %v", took)
	}
}

// Behind a Service each connection may reach another member: the first lands
// on a frozen one (accepted, never answered), the next on a live one. Dial
// must not wait out the first: its second, staggered connection logs in.
func TestDialStaggersPastSilentMember(t *testing.T) {
	p := newPKI(t)
	sessions := make(chan *Conn, 1)
	live := startServer(t, ServerTLSConfig(p.server, nil), answer(func(*LoginRequest) *LoginResult {
		return &LoginResult{Code: OK}
	}, sessions))
	// The "Service": the first connection goes to a frozen member, the others
	// are forwarded to the live one.
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	go func() {
		var frozen net.Conn
		defer func() {
			if frozen != nil {
				frozen.Close()
			}
		}()
		for n := 0; ; n++ {
			c, err := lb.Accept()
			if err != nil {
				return
			}
			if n == 0 {
				frozen = c
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", live.addr)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	start := time.Now()
	conn, _, err := Dial(context.Background(), lb.Addr().String(), clientConf(t, p), okLogin)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Dial through a Service with one frozen member: %v", err)
	}
	conn.Close()
	(<-sessions).Close()
	if want := handshakeStagger; took < want-50*time.Millisecond || took > want+time.Second {
		t.Fatalf("logged in after %v; want about one stagger (%v)", took, want)
	}
	t.Logf("logged in on the second connection after %v", took.Round(time.Millisecond))
}
