// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/netip"
	"testing"
	"time"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// received is a frame that came by datagram, and where the datagram came from.
type received struct {
	frame []byte
	from  netip.AddrPort
}

// TestUDPForwardedOverMesh is kube-proxy balancing a client's UDP flow apart
// from its TCP connection: alice's TLS session is on vpn-member-0 (the
// dynamic hub's owner), but her datagrams go to vpn-member-1 (vpn-member-0
// advertises vpn-member-1's UDP port, as a Service would send the flow
// there). Her frames still reach bob by datagram — forwarded over the mesh
// to the owner, which authenticates them — and bob's frames reach her by
// datagram, sent from vpn-member-1's socket, the one her flow is bound to.
func TestUDPForwardedOverMesh(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})

	// Both advertise member-1's port: the "Service" sends every flow there.
	m0, _, m1UDP := udpMembersBehindOnePort(t, ns)

	dyn := ns + "/dyn"
	bob := m0.frameLogin(t, dyn, "bob", "bob@m0")
	alice, res := m0.udpLogin(t, dyn, "alice")
	if res.UDP.Port != m1UDP.Port() {
		t.Fatalf("alice was told UDP port %d, want %d", res.UDP.Port, m1UDP.Port())
	}
	p := datagram.Params{Session: res.UDP.Session, Suite: datagram.Suite(res.UDP.Suite), Role: datagram.Client,
		Exporter: datagram.TLSExporter(alice.NetConn().(*tls.Conn).ConnectionState())}
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
	rx := make(chan received, 256)
	ack := make([]byte, datagram.MaxDatagram)
	go func() {
		for {
			err := sock.ReadBatch(func(d []byte, from netip.AddrPort) {
				h, pl, err := opener.Open(d)
				if err != nil {
					return
				}
				switch h.Type {
				case datagram.TypeProbe: // the owner's path is up once its probes are answered
					id, _ := datagram.ParseProbe(pl)
					if a, err := sealer.SealProbeAck(ack, id, len(d)); err == nil {
						_ = sock.WriteBatch(m1UDP, [][]byte{a})
					}
				case datagram.TypeData:
					_, _, _ = datagram.Unpack(pl, framing.Limits{MaxFrame: 1600}, func(f []byte, _ gso.Meta) {
						select {
						case rx <- received{bytes.Clone(f), from}:
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
	var enc framing.Encoder
	sendData := func(f []byte) {
		b := enc.Begin(make([]byte, datagram.HeaderLen-framing.HeaderLen, datagram.MaxDatagram), datagram.TypeData, framing.Meta, nil, 1<<16)
		b = enc.Add(b, f, gso.Meta{})
		d, err := sealer.Seal(datagram.TypeData, enc.End(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sock.WriteBatch(m1UDP, [][]byte{d}); err != nil {
			t.Fatal(err)
		}
	}

	// alice → bob: datagrams to member-1, forwarded to member-0 once the
	// link (version 3) is up; until then member-1 drops them (no TLS
	// fallback on this side: alice's frames go only by datagram here).
	eventually(t, 20*time.Second, "a frame from alice's datagrams at bob", func() error {
		tag := "udp-in " + time.Now().String()
		sendData(frame(mac(2), mac(1), tag))
		return bob.receive(300*time.Millisecond, tag)
	})

	// bob → alice: over TLS until member-0's path to alice (through
	// member-1) is up, then as datagrams from member-1's socket.
	deadline := time.Now().Add(15 * time.Second)
	for {
		tag := "udp-out " + time.Now().String()
		bob.send(t, frame(mac(1), mac(2), tag))
		select {
		case r := <-rx:
			if !bytes.HasPrefix(r.frame[14:], []byte("udp-out ")) {
				t.Fatalf("alice got an unexpected frame %q", r.frame)
			}
			if r.from != m1UDP {
				t.Fatalf("alice got bob's frame from %s, want it from member-1's socket %s (the one her flow reaches)", r.from, m1UDP)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no frame reached alice by datagram within 15s")
		}
	}
}

// udpLogin logs user in at r offering CapUDP and returns the session and
// its LoginResult; the member must grant the UDP channel.
func (r *runner) udpLogin(t *testing.T, hub, user string, moreCaps ...uint32) (*protocol.Conn, *protocol.LoginResult) {
	t.Helper()
	var conn *protocol.Conn
	var res *protocol.LoginResult
	eventually(t, 20*time.Second, "login to "+hub+" as "+user+" with CapUDP", func() error {
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		var err error
		caps := protocol.CapUDP | protocol.CapGSO
		for _, c := range moreCaps {
			caps |= c
		}
		conn, res, err = protocol.Dial(ctx, r.addr, r.client, protocol.LoginRequest{Hub: hub, User: user, Password: user + "-pw",
			Kind: protocol.KindClient, Capabilities: caps})
		return err
	})
	t.Cleanup(func() { conn.Close() })
	if res.Capabilities&protocol.CapUDP == 0 || res.UDP == nil {
		t.Fatalf("the member did not grant CapUDP: capabilities %#x", res.Capabilities)
	}
	go func() { _ = conn.RunKeepalive(bg()) }()
	go func() {
		for {
			if _, err := conn.ReadFrames(func([]byte) {}); err != nil {
				return
			}
		}
	}()
	return conn, res
}

// udpMembersBehindOnePort starts vpn-member-0 and vpn-member-1 meshed on
// loopback, each with a UDP socket, both advertising member-1's UDP port —
// as a Service would send every client's flow to member-1.
func udpMembersBehindOnePort(t *testing.T, ns string) (m0, m1 *runner, m1UDP netip.AddrPort) {
	t.Helper()
	peerDir := t.TempDir()
	writePeerPKI(t, peerDir)
	names := []string{"vpn-member-0", "vpn-member-1"}
	setups := map[string]*meshSetup{}
	addrs := map[string]string{}
	udps := map[string]*udpio.Conn{}
	for _, name := range names {
		ln := loopbackListener(t)
		addrs[name] = ln.Addr().String()
		uc, err := udpio.Listen("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udps[name] = uc
		setups[name] = &meshSetup{peerDir: peerDir, ln: ln, udp: uc, peerAddr: func(member, _ string) string { return addrs[member] }}
	}
	m1UDP = udps["vpn-member-1"].LocalAddr()
	for _, ms := range setups {
		ms.udpAdvertise = m1UDP.Port()
	}
	m0 = startMemberWith(t, ns, "vpn-member-0", env.Config, *setups["vpn-member-0"])
	m1 = startMemberWith(t, ns, "vpn-member-1", env.Config, *setups["vpn-member-1"])
	return m0, m1, m1UDP
}
