// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// superFrame is a broadcast TCP/IPv4 super-frame with payload n, as an
// offloading TAP hands it out, and its metadata (testutil.TCPSuperFrame).
func superFrame(src [6]byte, n int, mss uint16) ([]byte, gso.Meta) {
	return testutil.TCPSuperFrame(broadcast, src, false, false, n, mss)
}

func sendSuper(s *session, b []byte, m gso.Meta) {
	f := hub.NewFrameSize(len(b))
	f.SetLen(copy(f.Buf(), b))
	f.Meta = m
	s.p.Forward([]*hub.Frame{f})
}

// Between two members that both speak link version 2, a super-frame crosses
// the static-hub fabric whole, with its metadata.
func TestSuperFrameCrossesTheFabricWhole(t *testing.T) {
	ca := newTestCA(t)
	m0 := newMember(t, "m0", "127.0.0.1:0", ca.conf, 1, "office")
	m1 := newMember(t, "m1", "127.0.0.1:0", ca.conf, 2, "office")
	connect(m0.node, m1.node)
	waitShared(t, m0.node, "office", "m1")
	waitShared(t, m1.node, "office", "m0")

	b, meta := superFrame(m0.sessions["office"].src, 60000, 1448)
	sendSuper(m0.sessions["office"], b, meta)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got [1]*hub.Frame
	if _, err := m1.sessions["office"].p.Dequeue(ctx, got[:]); err != nil {
		t.Fatal(err)
	}
	defer got[0].Release()
	if !bytes.Equal(got[0].B, b) || got[0].Meta != meta {
		t.Fatalf("m1 got %d bytes with %+v, want the %d-byte super-frame with %+v", len(got[0].B), got[0].Meta, len(b), meta)
	}
	// Forward publishes a port's ingress counters after queueing the batch,
	// so the frame can be dequeued a moment before they show.
	waitFor(t, "m1 counting the super-frame from m0", func() bool {
		return m1.peerPort(t, "office", "m0").FramesIn == 1
	})
	if s := m1.peerPort(t, "office", "m0"); s.BytesIn != uint64(len(b)) || s.Drops.Oversize != 0 {
		t.Fatalf("m1's port from m0: %+v", s)
	}
}

// oldPeer stands in for a member that speaks only link version 1: like that
// code, it closes a connection whose Hello states another version without
// answering, and otherwise answers, attaches hub "office" and hands every
// Frames message it reads to frames.
func oldPeer(t *testing.T, ca *testCA, versions chan<- uint16, frames chan<- []byte) string {
	t.Helper()
	ln, err := newLoopbackListener()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, ca.conf)
				_, v, err := readHelloVersion(tc)
				if err != nil {
					return
				}
				versions <- v
				if v != 1 {
					return
				}
				tc.Write(appendHelloVersion(nil, "m9", 1))
				tc.Write(appendAttach(nil, 1, "office"))
				var h [headerLen]byte
				for {
					if _, err := io.ReadFull(tc, h[:]); err != nil {
						return
					}
					typ, n := parseHeader(h[:])
					body := make([]byte, n)
					if _, err := io.ReadFull(tc, body); err != nil {
						return
					}
					if typ == msgFramesGSO {
						t.Errorf("a version 1 peer was sent FramesGSO")
						return
					}
					if typ != msgFrames {
						continue
					}
					var d framing.Decoder
					d.Limits = framing.Limits{MaxFrame: framing.MaxPlainFrame}
					if err := d.BeginBody(framing.Plain, body[4:]); err != nil {
						t.Errorf("version 1 peer: %v", err)
						return
					}
					for d.Left() > 0 {
						f, _, err := d.NextInBody()
						if err != nil {
							t.Errorf("version 1 peer: %v", err)
							return
						}
						frames <- bytes.Clone(f)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A member that speaks version 2 still links to one that speaks only 1: its
// version 2 Hello goes unanswered, it dials again offering 1, and the
// super-frames it sends over that link are segmented first.
func TestVersion1PeerGetsSegments(t *testing.T) {
	ca := newTestCA(t)
	versions, frames := make(chan uint16, 8), make(chan []byte, 256)
	addr := oldPeer(t, ca, versions, frames)
	m0 := newMember(t, "m0", "127.0.0.1:0", ca.conf, 1, "office")
	m0.m.SetPeers(map[string]string{"m9": addr})
	waitShared(t, m0.node, "office", "m9")
	if v1, v2 := <-versions, <-versions; v1 != linkVersion || v2 != 1 {
		t.Fatalf("Hellos offered versions %d then %d, want %d then 1", v1, v2, linkVersion)
	}

	b, meta := superFrame(m0.sessions["office"].src, 10000, 1448)
	sendSuper(m0.sessions["office"], b, meta)
	var payload []byte
	for len(payload) < 10000 {
		select {
		case f := <-frames:
			if len(f) > 54+1448 {
				t.Fatalf("a %d-byte frame reached the version 1 peer", len(f))
			}
			if gso.CsumFold(gso.CsumAdd(gso.CsumAdd(0, f[26:34])+6+uint64(len(f)-34), f[34:])) != 0xffff {
				t.Fatal("segment with a wrong TCP checksum")
			}
			payload = append(payload, f[54:]...)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d payload bytes arrived", len(payload))
		}
	}
	if !bytes.Equal(payload, b[54:]) {
		t.Fatal("the segments' payloads do not add up to the super-frame's")
	}
}

// A version 1 dialler is answered with version 1 by a member that speaks 2.
func TestVersion1DiallerAnsweredWithVersion1(t *testing.T) {
	ca := newTestCA(t)
	n1 := startNode(t, "m1", "127.0.0.1:0", ca.conf)
	n1.m.SetPeers(map[string]string{"m0": "127.0.0.1:1"})
	for _, offer := range []uint16{1, 2, 3} {
		c, err := tls.Dial("tcp", n1.addr, clientConfig(ca.conf, ALPNLink))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(appendHelloVersion(nil, "m0", offer))
		name, v, err := readHelloVersion(c)
		c.Close()
		if want := min(offer, linkVersion); err != nil || name != "m1" || v != want {
			t.Fatalf("offer %d: answer %q version %d, %v; want m1 version %d", offer, name, v, err, want)
		}
	}
}

// A relayed session is negotiated between client and owner: the entry
// forwards the Login's capabilities and the owner's answer unchanged, and a
// super-frame then crosses entry and owner whole, both ways.
func TestRelayedSessionNegotiatesGSOEndToEnd(t *testing.T) {
	ca := newTestCA(t)
	n0 := startNode(t, "m0", "127.0.0.1:0", ca.conf)
	n1 := startNode(t, "m1", "127.0.0.1:0", ca.conf)
	connect(n0, n1)
	seen := make(chan protocol.LoginRequest, 1)
	n1.m.OnRelayedSession(func(req *protocol.LoginRequest, conn net.Conn) {
		seen <- *req
		res := &protocol.LoginResult{Code: protocol.OK, Capabilities: req.Capabilities & protocol.CapGSO}
		if err := protocol.WriteResult(conn, res); err != nil {
			conn.Close()
			return
		}
		pc := protocol.NewConn(conn, res.ConnConfig())
		defer pc.Close()
		var frames [][]byte
		var metas []gso.Meta
		for {
			frames, metas = frames[:0], metas[:0]
			_, err := pc.ReadFramesGSO(func(f []byte, m gso.Meta) {
				frames, metas = append(frames, bytes.Clone(f)), append(metas, m)
			})
			if err != nil || pc.WriteFramesGSO(frames, metas) != nil {
				return
			}
		}
	})
	e := startEntry(t, ca, n0.m, "m1")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, res, err := protocol.Dial(ctx, e.addr, e.clients,
		protocol.LoginRequest{Hub: "echo", Kind: protocol.KindClient, Capabilities: protocol.CapGSO})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if req := <-seen; req.Capabilities != protocol.CapGSO || !req.Relayed {
		t.Fatalf("owner saw %+v, want the client's CapGSO on a relayed login", req)
	}
	if res.Capabilities != protocol.CapGSO || !pc.Config().GSO {
		t.Fatalf("client got capabilities %#x through the entry, want CapGSO", res.Capabilities)
	}
	b, meta := superFrame(mac(1), 50000, 1448)
	if err := pc.WriteFramesGSO([][]byte{b}, []gso.Meta{meta}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	var gotMeta gso.Meta
	if _, err := pc.ReadFramesGSO(func(f []byte, m gso.Meta) { got, gotMeta = bytes.Clone(f), m }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) || gotMeta != meta {
		t.Fatalf("echo through the relay: %d bytes with %+v, want the %d-byte super-frame with %+v", len(got), gotMeta, len(b), meta)
	}
}

// BenchmarkLinkSuperFrames is the static-hub link (session on m0's hub -> pump
// -> TLS -> reader -> session on m1's hub) carrying one TCP stream, one op per
// 64 KiB IP packet's worth: as 46 MTU frames ("mtu") or as one super-frame
// with its metadata ("gso"). Gbit/s counts the MTU frames' bytes in both.
func BenchmarkLinkSuperFrames(b *testing.B) {
	for _, mode := range []string{"mtu", "gso"} {
		b.Run(mode, func(b *testing.B) {
			ca := newTestCA(b)
			n0 := startNode(b, "m0", "127.0.0.1:0", ca.conf)
			n1 := startNode(b, "m1", "127.0.0.1:0", ca.conf)
			connect(n0, n1)
			s0, s1, srcMAC, _ := linkSetup(b, n0, n1)
			super, meta := superFrame(srcMAC, 65535-40, 1448)
			var segs [][]byte
			gso.Split(meta, super, make([]byte, gso.MaxSuperFrame), func(s []byte) { segs = append(segs, bytes.Clone(s)) })
			segBytes := 0
			for _, s := range segs {
				segBytes += len(s)
			}
			perOp := 1
			if mode == "mtu" {
				perOp = len(segs)
			}
			// Ops in flight: under the hub queues' 1024 frames and 8 MiB.
			const window = 16
			var got atomic.Int64
			progress := make(chan struct{}, 1)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			go func() {
				var frames [maxBatch]*hub.Frame
				var n int64
				for n < int64(b.N*perOp) {
					k, err := s1.Dequeue(ctx, frames[:])
					if err != nil {
						return
					}
					releaseAll(frames[:k])
					n += int64(k)
					got.Store(n / int64(perOp))
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}()
			batch := make([]*hub.Frame, 0, len(segs))
			b.SetBytes(int64(segBytes))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for sent := 0; sent < b.N; sent++ {
				for int64(sent)-got.Load() >= window {
					select {
					case <-progress:
					case <-ctx.Done():
						b.Fatalf("link delivered %d of %d ops", got.Load(), sent)
					}
				}
				if mode == "mtu" {
					for _, s := range segs {
						f := hub.NewFrameSize(len(s))
						f.SetLen(copy(f.Buf(), s))
						batch = append(batch, f)
					}
				} else {
					f := hub.NewFrameSize(len(super))
					f.SetLen(copy(f.Buf(), super))
					f.Meta = meta
					batch = append(batch, f)
				}
				s0.Forward(batch)
				clear(batch)
				batch = batch[:0]
			}
			for got.Load() < int64(b.N) {
				select {
				case <-progress:
				case <-ctx.Done():
					b.Fatalf("link delivered %d of %d ops", got.Load(), b.N)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*segBytes*8)/b.Elapsed().Seconds()/1e9, "Gbit/s")
			// CPU (this process: both members) per op, steadier than Gbit/s
			// on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
