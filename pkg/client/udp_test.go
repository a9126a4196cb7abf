// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"bytes"
	"crypto/tls"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// udpMember is the member's UDP half for the client tests: it answers
// probes while answering is set and hands out the frames of Data datagrams.
type udpMember struct {
	sock      *udpio.Conn
	sid       datagram.SessionID
	answering atomic.Bool
	frames    chan []byte

	mu     sync.Mutex
	sealer *datagram.Sealer
	client netip.AddrPort
}

func newUDPMember(t *testing.T) *udpMember {
	sock, err := udpio.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	u := &udpMember{sock: sock, sid: datagram.SessionID{9, 8, 7, 6, 5, 4, 3, 2}, frames: make(chan []byte, 64)}
	u.answering.Store(true)
	return u
}

// grant is the testMember's decision: CapUDP with this socket's port.
func (u *udpMember) grant(_ int, req *protocol.LoginRequest) *protocol.LoginResult {
	r := ok("t")
	if req.Capabilities&protocol.CapUDP != 0 {
		r.Capabilities |= protocol.CapUDP
		r.UDP = &protocol.UDPParams{Port: u.sock.LocalAddr().Port(), Session: u.sid, Suite: uint8(datagram.AES256GCM)}
	}
	return r
}

// serve takes the keys from the member's side of sess and answers datagrams.
func (u *udpMember) serve(t *testing.T, sess *protocol.Conn) {
	p := datagram.Params{Session: u.sid, Suite: datagram.AES256GCM, Role: datagram.Server,
		Exporter: datagram.TLSExporter(sess.NetConn().(*tls.Conn).ConnectionState())}
	sealer, err := datagram.NewSealer(p)
	if err != nil {
		t.Fatal(err)
	}
	opener, _ := datagram.NewOpener(p)
	u.mu.Lock()
	u.sealer = sealer
	u.mu.Unlock()
	ack := make([]byte, datagram.MaxDatagram)
	go func() {
		for {
			err := u.sock.ReadBatch(func(d []byte, from netip.AddrPort) {
				h, pl, err := opener.Open(d)
				if err != nil {
					return
				}
				u.mu.Lock()
				u.client = from
				u.mu.Unlock()
				switch h.Type {
				case datagram.TypeProbe:
					if !u.answering.Load() {
						return
					}
					id, _ := datagram.ParseProbe(pl)
					if a, err := sealer.SealProbeAck(ack, id, len(d)); err == nil {
						u.sock.WriteBatch(from, [][]byte{a})
					}
				case datagram.TypeData:
					datagram.Unpack(pl, framing.Limits{MaxFrame: 1600}, func(f []byte, _ gso.Meta) { u.frames <- bytes.Clone(f) })
				}
			})
			if err != nil {
				return
			}
		}
	}()
}

// data seals frames into one Data datagram for the client.
func (u *udpMember) data(t *testing.T, frames ...string) []byte {
	var enc framing.Encoder
	b := enc.Begin(make([]byte, datagram.HeaderLen-framing.HeaderLen, datagram.MaxDatagram), datagram.TypeData, framing.Meta, nil, 1<<16)
	for _, f := range frames {
		b = enc.Add(b, []byte(f), gso.Meta{})
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	d, err := u.sealer.Seal(datagram.TypeData, enc.End(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (u *udpMember) send(t *testing.T, d []byte) {
	u.mu.Lock()
	to := u.client
	u.mu.Unlock()
	if err := u.sock.WriteBatch(to, [][]byte{bytes.Clone(d)}); err != nil {
		t.Fatal(err)
	}
}

// The client's UDP channel end to end against a member's UDP half: frames go
// both ways by datagram once the path is up; a replayed datagram never
// reaches the TAP; when probes stop being answered the frames move to TLS
// within the dead timeout, and back to UDP when they are answered again,
// on the same session.
func TestUDPChannelUpDownUp(t *testing.T) {
	u := newUDPMember(t)
	m := newTestMember(t, u.grant)
	dev := newPipeTAP()
	var status testutil.SyncBuffer
	runClient(t, m, dev, &status, nil)
	sess := m.nextSession()
	u.serve(t, sess)
	if l := m.loginsSoFar()[0]; l.Capabilities&protocol.CapUDP == 0 {
		t.Fatalf("the client did not offer CapUDP (capabilities %#x)", l.Capabilities)
	}
	ups := func() int {
		return strings.Count(status.String(), "UDP path to 127.0.0.1") - strings.Count(status.String(), "down: frames go over TLS")
	}
	downs := func() int { return strings.Count(status.String(), "down: frames go over TLS") }
	waitUntil(t, "UDP path up", func() bool { return ups() == 1 })

	dev.in <- []byte("host frame 1")
	if got := recvFrame(t, u.frames, "frame in a datagram"); string(got) != "host frame 1" {
		t.Fatalf("member got %q by UDP", got)
	}
	d := u.data(t, "hub frame 1")
	u.send(t, d)
	if got := recvFrame(t, dev.out, "frame on the TAP"); string(got) != "hub frame 1" {
		t.Fatalf("TAP got %q", got)
	}
	u.send(t, d) // the replay is dropped: the next frame is the fresh one
	u.send(t, u.data(t, "hub frame 2"))
	if got := recvFrame(t, dev.out, "frame on the TAP"); string(got) != "hub frame 2" {
		t.Fatalf("after a replay the TAP got %q, want the fresh frame", got)
	}

	u.answering.Store(false)
	start := time.Now()
	waitUntil(t, "UDP path down", func() bool { return downs() == 1 })
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("fell back after %v, want within 3s", took)
	}
	dev.in <- []byte("host frame 2")
	if got := memberFrame(t, sess); string(got) != "host frame 2" {
		t.Fatalf("member got %q over TLS", got)
	}

	u.answering.Store(true)
	waitUntil(t, "UDP path up again", func() bool { return ups() == 2 })
	dev.in <- []byte("host frame 3")
	if got := recvFrame(t, u.frames, "frame in a datagram"); string(got) != "host frame 3" {
		t.Fatalf("member got %q by UDP after the return", got)
	}
	if s := status.String(); strings.Count(s, "connected to hub") != 1 {
		t.Fatalf("the session was replaced:\n%s", s)
	}
}

// --udp=false: the client does not offer the channel.
func TestNoUDPKeepsTLS(t *testing.T) {
	u := newUDPMember(t)
	m := newTestMember(t, u.grant)
	dev := newPipeTAP()
	runClient(t, m, dev, nil, func(o *Options) { o.NoUDP = true })
	sess := m.nextSession()
	if l := m.loginsSoFar()[0]; l.Capabilities&(protocol.CapUDP|protocol.CapUDPChaCha) != 0 {
		t.Fatalf("--udp=false offered capabilities %#x", l.Capabilities)
	}
	dev.in <- []byte("host frame")
	if got := memberFrame(t, sess); string(got) != "host frame" {
		t.Fatalf("member got %q", got)
	}
}
