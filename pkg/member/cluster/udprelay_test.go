// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/mesh"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// TestUDPForRelayedSession: alice logs in at vpn-member-1 for a dynamic hub
// held by vpn-member-0, so her session is relayed (her TLS ends at
// member-1, her session is on member-0). She still gets the UDP channel:
// member-1 exports her keys and hands them to member-0 with the relayed
// login. Her datagrams go to member-1 (the port both advertise, as a Service
// sending her flow there), which forwards them to member-0 by the session
// ID's tag; member-0 authenticates them and its datagrams to her leave from
// member-1's socket. Frames cross both ways by datagram, and member-0 gets
// later epochs' keys from member-1 by a mesh call.
func TestUDPForRelayedSession(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})

	m0, m1, m1UDP := udpMembersBehindOnePort(t, ns)

	dyn := ns + "/dyn"
	bob := m0.frameLogin(t, dyn, "bob", "bob@m0")
	// Relayed: member-1 does not serve the hub. Without the keys in the
	// relayed login the owner refuses CapUDP and udpLogin fails.
	alice, res := m1.udpLogin(t, dyn, "alice")
	if got := relayedNow(t, m1); got != "1" {
		t.Fatalf("member-1 relays %q sessions, want 1 (alice's)", got)
	}
	if tag := binary.BigEndian.Uint32(res.UDP.Session[:4]); tag != mesh.DatagramTag("vpn-member-0") {
		t.Fatalf("alice's datagram session ID carries tag %#x, want the owner's %#x", tag, mesh.DatagramTag("vpn-member-0"))
	}
	exp := datagram.TLSExporter(alice.NetConn().(*tls.Conn).ConnectionState())
	uc := newUDPTestClient(t, res, exp, m1UDP)

	// alice → bob: datagrams to member-1, forwarded to member-0.
	eventually(t, 20*time.Second, "a frame from alice's datagrams at bob", func() error {
		tag := "relayed-udp-in " + time.Now().String()
		uc.sendData(t, frame(mac(2), mac(1), tag))
		return bob.receive(300*time.Millisecond, tag)
	})
	// bob → alice: by TLS (through the relay) until member-0's path to her
	// is up, then by datagram from member-1's socket.
	uc.receiveByDatagram(t, bob, "relayed-udp-out ", m1UDP)

	// Later epochs: member-0 asks member-1 for them as its key table runs
	// low; the answer is what alice derives from her TLS session.
	owner := meshUDP{m: m0.m.mesh, tag: mesh.DatagramTag("vpn-member-0"), self: "vpn-member-0"}
	got, err := owner.RelayUDPKeys(bg(), "vpn-member-1", res.UDP.Session, datagram.RelayKeyEpochs, datagram.RelayKeyEpochs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := datagram.EpochKeys(exp, datagram.RelayKeyEpochs, datagram.RelayKeyEpochs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the entry's keys for later epochs differ from the client's")
	}
	// Only the owner the session was relayed to gets them.
	if a := m1.m.relays.udpKeys(relayUDPCall{Op: "udpkeys", From: "vpn-member-1", Session: res.UDP.Session[:], Epoch: 0, N: 1}); len(a.Keys) != 0 || !strings.Contains(a.Error, "no session") {
		t.Fatalf("keys handed to a member the session is not relayed to: %+v", a)
	}
}

// udpTestClient is the datagram half of a test client: it answers the
// member's probes (so the member's path comes up) and keeps the frames that
// arrive by datagram.
type udpTestClient struct {
	sealer *datagram.Sealer
	to     netip.AddrPort
	sock   *udpio.Conn
	rx     chan received
	enc    framing.Encoder
}

func newUDPTestClient(t *testing.T, res *protocol.LoginResult, exp datagram.Exporter, to netip.AddrPort) *udpTestClient {
	t.Helper()
	p := datagram.Params{Session: res.UDP.Session, Suite: datagram.Suite(res.UDP.Suite), Role: datagram.Client, Exporter: exp}
	sealer, err := datagram.NewSealer(p)
	if err != nil {
		t.Fatal(err)
	}
	opener, err := datagram.NewOpener(p)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := udpio.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	c := &udpTestClient{sealer: sealer, to: to, sock: sock, rx: make(chan received, 256)}
	ack := make([]byte, datagram.MaxDatagram)
	go func() {
		for {
			err := sock.ReadBatch(func(d []byte, from netip.AddrPort) {
				h, pl, err := opener.Open(d)
				if err != nil {
					return
				}
				switch h.Type {
				case datagram.TypeProbe:
					id, _ := datagram.ParseProbe(pl)
					if a, err := sealer.SealProbeAck(ack, id, len(d)); err == nil {
						_ = sock.WriteBatch(to, [][]byte{a})
					}
				case datagram.TypeData:
					_, _, _ = datagram.Unpack(pl, framing.Limits{MaxFrame: 1600}, func(f []byte, _ gso.Meta) {
						select {
						case c.rx <- received{bytes.Clone(f), from}:
						default:
						}
					})
				}
			})
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *udpTestClient) sendData(t *testing.T, f []byte) {
	t.Helper()
	b := c.enc.Begin(make([]byte, datagram.HeaderLen-framing.HeaderLen, datagram.MaxDatagram), datagram.TypeData, framing.Meta, nil, 1<<16)
	b = c.enc.Add(b, f, gso.Meta{})
	d, err := c.sealer.Seal(datagram.TypeData, c.enc.End(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.sock.WriteBatch(c.to, [][]byte{d}); err != nil {
		t.Fatal(err)
	}
}

// receiveByDatagram has from send frames tagged prefix until one reaches
// the client by datagram (from TLS until the member's path is up), and
// checks it came from want's socket.
func (c *udpTestClient) receiveByDatagram(t *testing.T, from *frameClient, prefix string, want netip.AddrPort) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		from.send(t, frame(mac(1), mac(2), prefix+time.Now().String()))
		select {
		case r := <-c.rx:
			if !bytes.HasPrefix(r.frame[14:], []byte(prefix)) {
				t.Fatalf("unexpected frame by datagram %q", r.frame)
			}
			if r.from != want {
				t.Fatalf("frame by datagram from %s, want it from %s (the socket the client's flow reaches)", r.from, want)
			}
			return
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("no frame %q… reached the client by datagram within 15s", prefix)
		}
	}
}
