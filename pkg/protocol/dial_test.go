package protocol

import (
	"context"
	"errors"
	"net"
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
