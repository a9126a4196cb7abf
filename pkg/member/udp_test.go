// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"bytes"
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// udpPeer is a test client's UDP half, speaking pkg/datagram directly.
type udpPeer struct {
	sock   *udpio.Conn
	member netip.AddrPort
	sealer *datagram.Sealer
	opener *datagram.Opener
	rx     chan []byte // frames that arrived in datagrams
}

func startUDP(t *testing.T, m *testMember) netip.AddrPort {
	t.Helper()
	uc, err := udpio.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.srv.ServeUDP(uc, uc.LocalAddr().Port()) }()
	t.Cleanup(func() {
		uc.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
	})
	eventually(t, 5*time.Second, "ServeUDP running", func() bool { return m.srv.udp.Load() != nil })
	return uc.LocalAddr()
}

func newUDPPeer(t *testing.T, c *client, member netip.AddrPort) *udpPeer {
	t.Helper()
	res := c.res
	if res.Capabilities&protocol.CapUDP == 0 || res.UDP == nil {
		t.Fatalf("member did not grant CapUDP: capabilities %#x", res.Capabilities)
	}
	p := datagram.Params{Session: res.UDP.Session, Suite: datagram.Suite(res.UDP.Suite), Role: datagram.Client,
		Exporter: datagram.TLSExporter(c.conn.NetConn().(*tls.Conn).ConnectionState())}
	sealer, err := datagram.NewSealer(p)
	if err != nil {
		t.Fatal(err)
	}
	opener, _ := datagram.NewOpener(p)
	sock, err := udpio.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &udpPeer{sock: sock, member: netip.AddrPortFrom(member.Addr(), res.UDP.Port), sealer: sealer, opener: opener, rx: make(chan []byte, 64)}
	ack := make([]byte, datagram.MaxDatagram)
	go func() {
		for {
			err := sock.ReadBatch(func(d []byte, _ netip.AddrPort) {
				h, pl, err := opener.Open(d)
				if err != nil {
					return
				}
				switch h.Type {
				case datagram.TypeProbe: // the member's path needs its probes answered
					id, _ := datagram.ParseProbe(pl)
					if a, err := sealer.SealProbeAck(ack, id, len(d)); err == nil {
						sock.WriteBatch(u.member, [][]byte{a})
					}
				case datagram.TypeData:
					datagram.Unpack(pl, framing.Limits{MaxFrame: 1600}, func(f []byte, _ gso.Meta) { u.rx <- bytes.Clone(f) })
				}
			})
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { sock.Close() })
	return u
}

// data seals frames into one Data datagram.
func (u *udpPeer) data(t *testing.T, frames ...[]byte) []byte {
	t.Helper()
	var enc framing.Encoder
	b := enc.Begin(make([]byte, datagram.HeaderLen-framing.HeaderLen, datagram.MaxDatagram), datagram.TypeData, framing.Meta, nil, 1<<16)
	for _, f := range frames {
		b = enc.Add(b, f, gso.Meta{})
	}
	d, err := u.sealer.Seal(datagram.TypeData, enc.End(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sendUntil sends d every 100 ms until c receives want (5 s at most).
func (u *udpPeer) sendUntil(t *testing.T, d []byte, c *client, want []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		u.send(t, d)
		select {
		case got := <-c.rx:
			if !bytes.Equal(got, want) {
				t.Fatalf("received frame\n %x\nwant\n %x", got, want)
			}
			return
		case err := <-c.end:
			t.Fatalf("session ended while waiting for a frame: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no frame within 5s of datagrams, want %x", want)
}

func (u *udpPeer) send(t *testing.T, d []byte) {
	t.Helper()
	if err := u.sock.WriteBatch(u.member, [][]byte{bytes.Clone(d)}); err != nil {
		t.Fatal(err)
	}
}

// A client that negotiated CapUDP sends frames into the hub as datagrams;
// a replayed datagram is refused; once the member's probes are answered the
// member sends the client's frames as datagrams too. A client that did not
// ask keeps TLS.
func TestUDPChannel(t *testing.T) {
	m := startMember(t, nil)
	udpAddr := startUDP(t, m)
	aliceReq := pw("alpha", "alice", "alice-pw")
	aliceReq.Capabilities = protocol.CapUDP
	alice := m.connect(t, aliceReq)
	bob := m.connect(t, pw("alpha", "bob", "bob-pw"))
	if bob.res.Capabilities&protocol.CapUDP != 0 || bob.res.UDP != nil {
		t.Fatalf("a client that did not offer CapUDP was granted it")
	}
	u := newUDPPeer(t, alice, udpAddr)

	first := eth(mac(2), mac(1), "over udp")
	d := u.data(t, first)
	// The member makes the session reachable by datagrams once it runs,
	// just after the OK (a real client probes first): until then a
	// datagram is dropped as unknown, so this one is sent again until it
	// arrives. Copies after that are refused as replays.
	u.sendUntil(t, d, bob, first)
	// The replay is refused; the member reads its socket in order, so the
	// next frame bob sees is the fresh one.
	u.send(t, d)
	second := eth(mac(2), mac(1), "fresh")
	u.send(t, u.data(t, second))
	bob.expect(t, second)

	// bob → alice: over TLS until the member's path to alice is up, then as
	// datagrams.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f := eth(mac(1), mac(2), "to alice "+time.Now().String())
		bob.send(t, f)
		select {
		case got := <-u.rx:
			if !bytes.Equal(got, f) {
				t.Fatalf("datagram frame %x, want %x", got, f)
			}
			web := httptest.NewServer(MetricsHandler(m.srv, MetricsOptions{}))
			defer web.Close()
			metrics := scrape(t, web.URL)
			// The first datagram may have been sent again before the session
			// was reachable (unknown_session) or after it arrived, before bob
			// read it (a replay): the counts say those happened, not how often.
			want(t, metrics, map[string]float64{
				key("hubfleet_server_udp_sessions", "path=up"):           1,
				key("hubfleet_server_udp_rejected_total", "reason=auth"): 0,
			})
			if n := metrics[key("hubfleet_server_udp_rejected_total", "reason=replay")]; n < 1 {
				t.Errorf("udp_rejected_total{reason=replay} = %v, want the replayed datagram counted", n)
			}
			if metrics[key("hubfleet_server_udp_datagrams_total", "direction=in")] < 3 || metrics[key("hubfleet_server_udp_datagrams_total", "direction=out")] < 1 {
				t.Errorf("datagram counters %v in, %v out", metrics[key("hubfleet_server_udp_datagrams_total", "direction=in")], metrics[key("hubfleet_server_udp_datagrams_total", "direction=out")])
			}
			return
		case <-alice.rx: // still on TLS
		case <-time.After(time.Until(deadline)):
			t.Fatal("no frame reached alice as a datagram within 10s")
		}
		if time.Now().After(deadline) {
			t.Fatal("no frame reached alice as a datagram within 10s")
		}
	}
}
