// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/certs"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

const peerName = "c-member"

// testCA is a cluster CA and the peer TLS configuration it signs.
type testCA struct {
	ca   *certs.CA
	pool *x509.CertPool
	conf *tls.Config
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	ca, err := certs.NewCA("c-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssuePeer(peerName, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	conf, err := TLSConfig(cert, pool, peerName)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca, pool: pool, conf: conf}
}

// node is one in-process member: a mesh on a loopback listener.
type node struct {
	name string
	addr string
	m    *Mesh
	ln   net.Listener
	done chan error
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startNode starts a mesh for name on addr ("127.0.0.1:0" for any port).
func startNode(t testing.TB, name, addr string, conf *tls.Config) *node {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{
		Self: name, TLS: conf, Logger: quiet(),
		Keepalive: 100 * time.Millisecond, DeadTimeout: time.Second,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	n := &node{name: name, addr: ln.Addr().String(), m: m, ln: ln, done: make(chan error, 1)}
	go func() { n.done <- m.Serve(ln) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.m.Close()
	<-n.done
	n.done <- ErrClosed // later stops return at once
}

func connect(nodes ...*node) {
	peers := map[string]string{}
	for _, n := range nodes {
		peers[n.name] = n.addr
	}
	for _, n := range nodes {
		n.m.SetPeers(peers)
	}
}

// waitFor polls cond until it holds or the deadline passes. The states it
// waits on (links up, ports open) have no event to block on from outside the
// package, so a short poll with a hard deadline is the condition wait.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func waitShared(t testing.TB, n *node, hubName string, peers ...string) {
	t.Helper()
	slices.Sort(peers)
	waitFor(t, n.name+" sharing "+hubName+" with "+strings.Join(peers, ","), func() bool {
		return slices.Equal(n.m.HubPeers(hubName), peers)
	})
}

func mac(i byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, i} }

var broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ethFrame builds an Ethernet frame of size bytes with a sequence number in
// its payload.
func ethFrame(dst, src [6]byte, seq uint32, size int) *hub.Frame {
	f := hub.NewFrameSize(size)
	b := f.Buf()[:size]
	copy(b, dst[:])
	copy(b[6:], src[:])
	binary.BigEndian.PutUint16(b[12:], 0x88b5) // local experimental EtherType
	binary.BigEndian.PutUint32(b[14:], seq)
	f.SetLen(size)
	return f
}

// session is a stand-in client: a PortSession on a hub.
type session struct {
	p   *hub.Port
	src [6]byte
}

func (s *session) send(dst [6]byte, seq uint32) {
	s.p.Forward([]*hub.Frame{ethFrame(dst, s.src, seq, 64)})
}

// recv returns the sequence number of the next frame, failing after 5s.
func (s *session) recv(t testing.TB) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var dst [1]*hub.Frame
	if _, err := s.p.Dequeue(ctx, dst[:]); err != nil {
		t.Fatalf("session %x: no frame: %v", s.src, err)
	}
	seq := binary.BigEndian.Uint32(dst[0].B[14:])
	dst[0].Release()
	return seq
}

func newLoopbackListener() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// serveLogins runs a loopback TLS listener with a serving certificate from ca,
// standing in for a member's client port: it reads each client's Login and hands
// it to handle, which owns conn from then on. It returns the listener's address.
func serveLogins(t testing.TB, ca *testCA, handle func(req *protocol.LoginRequest, conn net.Conn)) string {
	t.Helper()
	// A member's listener: TLS over protocol.WrapTCP, as pkg/member serves.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conf := ca.clientFacing(t)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			c := tls.Server(protocol.WrapTCP(raw), conf)
			go func() {
				req, err := protocol.ReadLogin(c)
				if err != nil {
					c.Close()
					return
				}
				handle(req, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// clientFacing is a member's server TLS configuration for clients, with a
// certificate of ca for 127.0.0.1.
func (ca *testCA) clientFacing(t testing.TB) *tls.Config {
	t.Helper()
	kp, err := ca.ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.ServerTLSConfig(cert, nil)
}
