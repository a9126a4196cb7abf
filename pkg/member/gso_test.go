// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// superFrame is a TCP/IPv4 super-frame from src to dst as an offloading TAP
// hands it out, cut into mss-byte segments (testutil.TCPSuperFrame).
func superFrame(dst, src [6]byte, n int, mss uint16) ([]byte, gso.Meta) {
	return testutil.TCPSuperFrame(dst, src, false, false, n, mss)
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

// BenchmarkEndToEndSuperFrames is client -> member -> client over TLS 1.3 on
// loopback, one op per 64 KiB IP packet's worth of one TCP stream (65549-byte
// super-frames, or their 46 MTU segments) delivered: "mtu" sends the segments
// between two clients without offload, "gso" the super-frames between two
// offload clients (whole through reader, hub and writer), "split" super-frames
// from an offload client to one without, which the member's session writer
// segments. Gbit/s counts the segments' bytes, the same data in all three.
func BenchmarkEndToEndSuperFrames(b *testing.B) {
	for _, mode := range []string{"mtu", "gso", "split"} {
		b.Run(mode, func(b *testing.B) {
			m := startMember(b, nil)
			tx := m.benchConnCaps(b, mode != "mtu")
			rx := m.benchConnCaps(b, mode == "gso")
			src, dst := mac(0x10), mac(0x80)
			if err := rx.WriteFrames([][]byte{eth(broadcast, dst, "hello")}); err != nil {
				b.Fatal(err)
			}
			eventually(b, 10*time.Second, "hub did not learn the receiver", func() bool {
				return m.hubStats(b, "alpha").Switch.MACs == 1
			})
			super, meta := superFrame(dst, src, 65535-40, 1448)
			var segs [][]byte
			gso.Split(meta, super, make([]byte, gso.MaxSuperFrame), func(s []byte) { segs = append(segs, bytes.Clone(s)) })
			segBytes := 0
			for _, s := range segs {
				segBytes += len(s)
			}
			perOp := 1
			if mode != "gso" {
				perOp = len(segs)
			}
			// Ops in flight: under the hub's egress queue in frames (1024)
			// and in pinned bytes (8 MiB), so nothing is tail-dropped.
			const window = 16
			var got atomic.Int64
			wake, done := make(chan struct{}, 1), make(chan error, 1)
			go func() {
				var n int64
				count := func(f []byte, _ gso.Meta) {
					if len(f) > 100 {
						n++
					}
				}
				for n < int64(b.N*perOp) {
					if _, err := rx.ReadFramesGSO(count); err != nil {
						done <- err
						return
					}
					got.Store(n / int64(perOp))
					select {
					case wake <- struct{}{}:
					default:
					}
				}
				done <- nil
			}()
			b.SetBytes(int64(segBytes))
			b.ResetTimer()
			for sent := 0; sent < b.N; sent++ {
				for int64(sent)-got.Load() >= window {
					select {
					case <-wake:
					case err := <-done:
						b.Fatalf("receiver: %v", err)
					}
				}
				var err error
				if mode == "mtu" {
					err = tx.WriteFrames(segs)
				} else {
					err = tx.WriteFramesGSO([][]byte{super}, []gso.Meta{meta})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*segBytes*8)/b.Elapsed().Seconds()/1e9, "Gbit/s")
			if d := m.hubStats(b, "alpha").Switch.Drops; d.QueueFull+d.Oversize > 0 {
				b.Errorf("member dropped frames: %+v", d)
			}
		})
	}
}

// benchConnCaps logs alice in on hub alpha, offering CapGSO when gsoOn.
func (m *testMember) benchConnCaps(b *testing.B, gsoOn bool) *protocol.Conn {
	req := pw("alpha", "alice", "alice-pw")
	if gsoOn {
		req.Capabilities = protocol.CapGSO
	}
	conn, _, err := m.login(req)
	if err != nil {
		b.Fatal(err)
	}
	if conn.Config().GSO != gsoOn {
		b.Fatalf("session GSO %v, want %v", conn.Config().GSO, gsoOn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = conn.RunKeepalive(ctx) }()
	b.Cleanup(func() { cancel(); conn.Close() })
	return conn
}
