// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// entry is a stand-in for the entry member's client listener: it reads each
// client's Login and relays it through m to owner.
type entry struct {
	addr    string
	clients *tls.Config
}

func startEntry(t testing.TB, ca *testCA, m *Mesh, owner string) *entry {
	t.Helper()
	addr := serveLogins(t, ca, func(req *protocol.LoginRequest, c net.Conn) {
		defer c.Close()
		// The outcome reaches the client, which the tests check;
		// logging here could outlive the test.
		_ = m.Relay(context.Background(), owner, *req, c)
	})
	clients, err := protocol.ClientTLSConfig(protocol.ClientTLSOptions{CAPool: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	return &entry{addr: addr, clients: clients}
}

// echoOwner answers relayed logins for hub "echo" with OK and echoes every
// frame back; other hubs get UnknownHub. Logins it saw are sent on seen.
func echoOwner(m *Mesh, seen chan<- protocol.LoginRequest) {
	m.OnRelayedSession(func(req *protocol.LoginRequest, conn net.Conn) {
		if seen != nil {
			seen <- *req
		}
		if req.Hub != "echo" {
			_ = protocol.WriteResult(conn, &protocol.LoginResult{Code: protocol.UnknownHub, Message: "no hub " + req.Hub})
			conn.Close()
			return
		}
		res := &protocol.LoginResult{Code: protocol.OK}
		if err := protocol.WriteResult(conn, res); err != nil {
			conn.Close()
			return
		}
		pc := protocol.NewConn(conn, res.ConnConfig())
		defer pc.Close()
		go pc.RunKeepalive(context.Background())
		out := make([][]byte, 0, protocol.MaxBatchFrames)
		for {
			out = out[:0]
			_, err := pc.ReadFrames(func(f []byte) { out = append(out, append([]byte(nil), f...)) })
			if err != nil {
				return
			}
			if pc.WriteFrames(out) != nil {
				return
			}
		}
	})
}

func TestRelayEcho(t *testing.T) {
	ca := newTestCA(t)
	n0 := startNode(t, "m0", "127.0.0.1:0", ca.conf)
	n1 := startNode(t, "m1", "127.0.0.1:0", ca.conf)
	connect(n0, n1)
	seen := make(chan protocol.LoginRequest, 4)
	echoOwner(n1.m, seen)
	e := startEntry(t, ca, n0.m, "m1")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, res, err := protocol.Dial(ctx, e.addr, e.clients, protocol.LoginRequest{Hub: "echo", User: "u", Password: "p", Kind: protocol.KindClient})
	if err != nil {
		t.Fatalf("relayed login: %v", err)
	}
	defer pc.Close()
	if res.Code != protocol.OK || res.KeepaliveInterval != protocol.DefaultKeepaliveInterval {
		t.Fatalf("client got %+v, want the owner's OK result", res)
	}
	req := <-seen
	if !req.Relayed || req.RelayEntry != "m0" || req.RelayClientAddr == "" || req.Password != "p" {
		t.Fatalf("owner saw %v (password %q), want a relayed login from m0 with the client's address and credential", req, req.Password)
	}

	// Frames both ways, several rounds, in order.
	for round := range 3 {
		var sent [][]byte
		for i := range 50 {
			sent = append(sent, bytes.Repeat([]byte{byte(round), byte(i)}, 700))
		}
		if err := pc.WriteFrames(sent); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for len(got) < len(sent) {
			if _, err := pc.ReadFrames(func(f []byte) { got = append(got, append([]byte(nil), f...)) }); err != nil {
				t.Fatalf("round %d after %d frames: %v", round, len(got), err)
			}
		}
		for i := range sent {
			if !bytes.Equal(got[i], sent[i]) {
				t.Fatalf("round %d frame %d came back different", round, i)
			}
		}
	}

	// A refusal from the owner reaches the client unchanged.
	_, res, err = protocol.Dial(ctx, e.addr, e.clients, protocol.LoginRequest{Hub: "nope", User: "u", Password: "p", Kind: protocol.KindClient})
	if le, ok := errors.AsType[*protocol.LoginError](err); !ok || le.Code != protocol.UnknownHub || res.Message != "no hub nope" {
		t.Fatalf("refused relay: got %v, want the owner's UnknownHub", err)
	}
}

func TestRelayRequiresRelayedLogin(t *testing.T) {
	// A plain login on the mesh port is refused even from a peer: the
	// owner's hook only ever sees logins an entry member marked Relayed.
	ca := newTestCA(t)
	n1 := startNode(t, "m1", "127.0.0.1:0", ca.conf)
	echoOwner(n1.m, nil)
	c, err := tls.Dial("tcp", n1.addr, clientConfig(ca.conf, ALPNRelay))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = protocol.Login(context.Background(), c, protocol.LoginRequest{Hub: "echo", Kind: protocol.KindClient})
	if le, ok := errors.AsType[*protocol.LoginError](err); !ok || le.Code != protocol.BadRequest {
		t.Fatalf("unrelayed login on the mesh port: got %v, want BadRequest", err)
	}
}
