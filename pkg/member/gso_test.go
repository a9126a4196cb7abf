package member

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// superFrame is a TCP/IPv4 super-frame from src to dst as an offloading TAP
// hands it out: payload n bytes, the TCP checksum field holding the
// pseudo-header sum, and the metadata to cut it into mss-byte segments.
func superFrame(dst, src [6]byte, n int, mss uint16) ([]byte, gso.Meta) {
	f := make([]byte, 14+20+20+n)
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(40+n))
	binary.BigEndian.PutUint16(ip[4:], 7)
	ip[8], ip[9] = 64, 6
	copy(ip[12:20], []byte{198, 18, 0, 1, 198, 18, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ^gso.CsumFold(gso.CsumAdd(0, ip[:20])))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp, 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	tcp[12], tcp[13] = 5<<4, 0x10
	for i := range n {
		tcp[20+i] = byte(i * 13)
	}
	binary.BigEndian.PutUint16(tcp[16:], gso.CsumFold(gso.CsumAdd(0, ip[12:20])+6+uint64(20+n)))
	return f, gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, HdrLen: 54, Size: mss, CsumStart: 34, CsumOffset: 16}
}

type offloadClient struct {
	conn *protocol.Conn
	rx   chan metaFrame
	end  chan error
}

type metaFrame struct {
	b []byte
	m gso.Meta
}

// connectGSO logs in offering CapGSO and reads frames with their metadata.
func (m *testMember) connectGSO(t testing.TB, req protocol.LoginRequest) *offloadClient {
	t.Helper()
	req.Capabilities = protocol.CapGSO
	conn, res, err := m.login(req)
	if err != nil {
		t.Fatalf("login to hub %q as %q: %v", req.Hub, req.User, err)
	}
	if res.Capabilities != protocol.CapGSO || !conn.Config().GSO {
		t.Fatalf("member accepted capabilities %#x, want CapGSO", res.Capabilities)
	}
	c := &offloadClient{conn: conn, rx: make(chan metaFrame, 256), end: make(chan error, 1)}
	go func() { _ = conn.RunKeepalive(context.Background()) }()
	go func() {
		for {
			_, err := conn.ReadFramesGSO(func(f []byte, m gso.Meta) { c.rx <- metaFrame{bytes.Clone(f), m} })
			if err != nil {
				c.end <- err
				return
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *offloadClient) expect(t testing.TB, want []byte, meta gso.Meta) {
	t.Helper()
	select {
	case got := <-c.rx:
		if !bytes.Equal(got.b, want) || got.m != meta {
			t.Fatalf("received %d bytes with %+v, want %d bytes with %+v", len(got.b), got.m, len(want), meta)
		}
	case err := <-c.end:
		t.Fatalf("session ended while waiting for a frame: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5s")
	}
}

// expectSegments reads the MTU segments a legacy client gets for a
// super-frame and checks each one's checksums and the payload they add up to.
func (c *client) expectSegments(t testing.TB, super []byte, meta gso.Meta) {
	t.Helper()
	var payload []byte
	for len(payload) < len(super)-int(meta.HdrLen) {
		var f []byte
		select {
		case f = <-c.rx:
		case err := <-c.end:
			t.Fatalf("session ended after %d payload bytes: %v", len(payload), err)
		case <-time.After(5 * time.Second):
			t.Fatalf("segments stopped after %d payload bytes", len(payload))
		}
		if len(f) > c.conn.Config().MaxFrame || len(f) < 54 || !bytes.Equal(f[:12], super[:12]) {
			t.Fatalf("a %d-byte frame is not a segment of the super-frame", len(f))
		}
		ip := f[14:34]
		if gso.CsumFold(gso.CsumAdd(0, ip)) != 0xffff || int(binary.BigEndian.Uint16(ip[2:])) != len(f)-14 {
			t.Fatal("segment with a wrong IPv4 header")
		}
		if gso.CsumFold(gso.CsumAdd(gso.CsumAdd(0, ip[12:20])+6+uint64(len(f)-34), f[34:])) != 0xffff {
			t.Fatal("segment with a wrong TCP checksum")
		}
		payload = append(payload, f[54:]...)
	}
	if !bytes.Equal(payload, super[meta.HdrLen:]) {
		t.Fatal("the segments' payloads do not add up to the super-frame's")
	}
}

// A super-frame from an offload client crosses the member's hub whole: an
// offload client receives it as one frame with its metadata, a client without
// offload receives it as MTU segments with correct checksums — for a flooded
// frame (one buffer shared by both egress ports) and for unicast.
func TestSuperFramesThroughTheHub(t *testing.T) {
	m := startMember(t, nil)
	a := m.connectGSO(t, pw("alpha", "alice", "alice-pw"))
	b := m.connectGSO(t, pw("alpha", "bob", "bob-pw"))
	legacy := m.connect(t, pw("alpha", "alice", "alice-pw"))

	flood, fm := superFrame(broadcast, mac(1), 60000, 1448)
	if err := a.conn.WriteFramesGSO([][]byte{flood}, []gso.Meta{fm}); err != nil {
		t.Fatal(err)
	}
	b.expect(t, flood, fm)
	legacy.expectSegments(t, flood, fm)

	// Unicast, once the hub has learned where the stations are.
	hb, hl := eth(broadcast, mac(2), "b is here"), eth(broadcast, mac(3), "legacy is here")
	if err := b.conn.WriteFrames([][]byte{hb}); err != nil {
		t.Fatal(err)
	}
	a.expect(t, hb, gso.Meta{})
	legacy.expect(t, hb)
	legacy.send(t, hl)
	a.expect(t, hl, gso.Meta{})
	b.expect(t, hl, gso.Meta{})
	toB, bm := superFrame(mac(2), mac(1), 30000, 1000)
	toL, lm := superFrame(mac(3), mac(1), 20000, 1448)
	if err := a.conn.WriteFramesGSO([][]byte{toB, toL}, []gso.Meta{bm, lm}); err != nil {
		t.Fatal(err)
	}
	b.expect(t, toB, bm)
	legacy.expectSegments(t, toL, lm)

	if d := m.hubStats(t, "alpha").Switch.Drops; d.Oversize != 0 || d.QueueFull != 0 {
		t.Fatalf("hub dropped frames: %+v", d)
	}
	if s := a.conn.Stats(); s.TxSuper != 3 || s.TxSegmented != 0 {
		t.Fatalf("offload sender stats %+v, want 3 super-frames sent whole", s)
	}
}
