// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// gsoPair logs a client offering offer in to a loopback server that accepts
// grant(req) and returns both ends with the server's view of the request.
func gsoPair(t testing.TB, offer uint32, grant func(*LoginRequest) uint32) (client, member *Conn, seen *LoginRequest) {
	t.Helper()
	req := okLogin
	req.Capabilities = offer
	client, member = loginPair(t, req, func(req *LoginRequest) *LoginResult {
		seen = req
		return &LoginResult{Code: OK, Capabilities: grant(req)}
	})
	return client, member, seen
}

// newServer accepts what a client offers, as pkg/member does; oldServer
// does not know capabilities, so it never grants one.
func newServer(req *LoginRequest) uint32 { return req.Capabilities & CapGSO }
func oldServer(*LoginRequest) uint32     { return 0 }

func TestGSONegotiation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		offer uint32
		grant func(*LoginRequest) uint32
		want  bool
	}{
		{"new client, new server", CapGSO, newServer, true},
		{"new client, old server", CapGSO, oldServer, false},
		{"old client, new server", 0, newServer, false},
		{"unknown bits offered are not granted", CapGSO | 1<<7, newServer, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, member, req := gsoPair(t, tc.offer, tc.grant)
			if req.Capabilities != tc.offer {
				t.Fatalf("server read capabilities %#x, client offered %#x", req.Capabilities, tc.offer)
			}
			if client.Config().GSO != tc.want || member.Config().GSO != tc.want {
				t.Fatalf("GSO client=%v member=%v, want %v on both", client.Config().GSO, member.Config().GSO, tc.want)
			}
		})
	}
}

// A server may only accept what the client offered; a result granting more is
// a protocol error, not a session in which the two sides disagree.
func TestCapabilityNotOfferedIsRefused(t *testing.T) {
	p := newPKI(t)
	sessions := make(chan *Conn, 1)
	s := startServer(t, ServerTLSConfig(p.server, nil), answer(func(*LoginRequest) *LoginResult {
		return &LoginResult{Code: OK, Capabilities: CapGSO}
	}, sessions))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := Dial(ctx, s.addr, clientConf(t, p), okLogin)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Dial = %v, want a protocol error", err)
	}
	// The server believes it started a session; end it so the server stops.
	select {
	case c := <-sessions:
		c.Close()
	case <-ctx.Done():
		t.Fatal("the server never started its side")
	}
}

// offloadFrame is a TCP super-frame as an offloading TAP hands it out
// (testutil.TCPSuperFrame).
func offloadFrame(v6, vlan bool, n int, mss uint16) ([]byte, gso.Meta) {
	return testutil.TCPSuperFrame([6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, v6, vlan, n, mss)
}

// checkSegment verifies the IP and TCP checksums of a complete frame and
// returns its TCP payload.
func checkSegment(t *testing.T, f []byte, l3 int, v6 bool) []byte {
	t.Helper()
	ipLen := 20
	var sum uint64
	if v6 {
		ipLen = 40
		sum = gso.CsumAdd(0, f[l3+8:l3+40])
		if got := int(binary.BigEndian.Uint16(f[l3+4:])); got != len(f)-l3-40 {
			t.Fatalf("IPv6 payload length %d, frame holds %d", got, len(f)-l3-40)
		}
	} else {
		if c := gso.CsumFold(gso.CsumAdd(0, f[l3:l3+20])); c != 0xffff {
			t.Fatalf("IPv4 header checksum wrong (%#x)", c)
		}
		if got := int(binary.BigEndian.Uint16(f[l3+2:])); got != len(f)-l3 {
			t.Fatalf("IPv4 total length %d, frame holds %d", got, len(f)-l3)
		}
		sum = gso.CsumAdd(0, f[l3+12:l3+20])
	}
	tcp := f[l3+ipLen:]
	if c := gso.CsumFold(gso.CsumAdd(sum+6+uint64(len(tcp)), tcp)); c != 0xffff {
		t.Fatalf("TCP checksum wrong (%#x)", c)
	}
	return tcp[20:]
}

type metaFrame struct {
	b []byte
	m gso.Meta
}

// readMeta reads until n frames have arrived, with their metadata.
func readMeta(t *testing.T, c *Conn, n int) []metaFrame {
	t.Helper()
	type result struct {
		got []metaFrame
		err error
	}
	done := make(chan result, 1)
	go func() {
		var got []metaFrame
		for len(got) < n {
			if _, err := c.ReadFramesGSO(func(f []byte, m gso.Meta) { got = append(got, metaFrame{bytes.Clone(f), m}) }); err != nil {
				done <- result{got, err}
				return
			}
		}
		done <- result{got, nil}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("after %d of %d frames: %v", len(r.got), n, r.err)
		}
		return r.got
	case <-time.After(10 * time.Second):
		t.Fatalf("%d frames did not arrive", n)
	}
	return nil
}

// A super-frame between two GSO sessions arrives whole, with its metadata,
// and counts as one frame of its length; between a GSO sender and a session
// without GSO it arrives as MTU segments with correct checksums whose
// payloads add up to the super-frame's.
func TestSuperFrameWholeOrSegmented(t *testing.T) {
	for _, tc := range []struct {
		name     string
		v6, vlan bool
	}{{"ipv4", false, false}, {"ipv6", true, false}, {"vlan", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			frame, meta := offloadFrame(tc.v6, tc.vlan, 60000, 1448)
			orig := bytes.Clone(frame)
			l3 := int(meta.CsumStart) - 20
			if tc.v6 {
				l3 -= 20
			}

			t.Run("to a GSO session", func(t *testing.T) {
				client, member, _ := gsoPair(t, CapGSO, newServer)
				if err := client.WriteFramesGSO([][]byte{frame}, []gso.Meta{meta}); err != nil {
					t.Fatal(err)
				}
				got := readMeta(t, member, 1)
				if !bytes.Equal(got[0].b, orig) || got[0].m != meta {
					t.Fatalf("got %d bytes with %+v, want the %d-byte super-frame with %+v", len(got[0].b), got[0].m, len(orig), meta)
				}
				tx, rx := client.Stats(), member.Stats()
				if tx.TxFrames != 1 || tx.TxBytes != uint64(len(frame)) || tx.TxSuper != 1 || tx.TxSegmented != 0 {
					t.Fatalf("sender stats %+v", tx)
				}
				if rx.RxFrames != 1 || rx.RxBytes != uint64(len(frame)) || rx.RxSuper != 1 {
					t.Fatalf("receiver stats %+v", rx)
				}
			})

			t.Run("to a session without GSO", func(t *testing.T) {
				client, member, _ := gsoPair(t, CapGSO, oldServer)
				// Written by the member: the old side is the client here.
				if err := member.WriteFramesGSO([][]byte{frame}, []gso.Meta{meta}); err != nil {
					t.Fatal(err)
				}
				segs := (60000 + 1447) / 1448
				got := readMeta(t, client, segs)
				var payload []byte
				for i, g := range got {
					if !g.m.IsZero() {
						t.Fatalf("segment %d has metadata %+v on a session without GSO", i, g.m)
					}
					if len(g.b) > client.Config().MaxFrame {
						t.Fatalf("segment %d is %d bytes, over the max frame", i, len(g.b))
					}
					if tc.vlan && binary.BigEndian.Uint16(g.b[12:]) != 0x8100 {
						t.Fatalf("segment %d lost its VLAN tag", i)
					}
					payload = append(payload, checkSegment(t, g.b, l3, tc.v6)...)
				}
				if !bytes.Equal(payload, orig[meta.HdrLen:]) {
					t.Fatal("the segments' payloads do not add up to the super-frame's")
				}
				if !bytes.Equal(frame, orig) {
					t.Fatal("WriteFramesGSO wrote into the caller's frame")
				}
				if s := member.Stats(); s.TxSegmented != 1 || s.TxFrames != uint64(segs) || s.TxSuper != 0 {
					t.Fatalf("sender stats %+v, want 1 segmented super-frame sent as %d frames", s, segs)
				}
			})
		})
	}
}

// A frame whose checksum was left to the hardware is completed in software
// for a session without GSO, and sent as it is to one with GSO.
func TestPartialChecksumCompletedWithoutGSO(t *testing.T) {
	frame, meta := offloadFrame(false, false, 1000, 0)
	orig := bytes.Clone(frame)
	client, member, _ := gsoPair(t, 0, newServer)
	if err := member.WriteFramesGSO([][]byte{frame, []byte("plain frame")}, []gso.Meta{meta, {}}); err != nil {
		t.Fatal(err)
	}
	got := readMeta(t, client, 2)
	checkSegment(t, got[0].b, 14, false)
	if string(got[1].b) != "plain frame" || !bytes.Equal(frame, orig) {
		t.Fatal("frames changed on the way")
	}

	gc, gm, _ := gsoPair(t, CapGSO, newServer)
	if err := gm.WriteFramesGSO([][]byte{frame}, []gso.Meta{meta}); err != nil {
		t.Fatal(err)
	}
	if got := readMeta(t, gc, 1); !bytes.Equal(got[0].b, orig) || got[0].m != meta {
		t.Fatalf("GSO session got %+v, want the frame with %+v", got[0].m, meta)
	}
}

// Metadata the sender cannot stand behind is dropped and counted on both
// paths, and the session goes on.
func TestBadMetadataDroppedAndCounted(t *testing.T) {
	frame, _ := offloadFrame(false, false, 100, 0)
	bad := []gso.Meta{
		{Flags: gso.NeedsCsum, CsumStart: 34, CsumOffset: 200}, // checksum outside the frame
		{Flags: gso.NeedsCsum, Type: gso.TypeUDP, Size: 100, CsumStart: 34, CsumOffset: 6},
		{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, Size: 0, CsumStart: 34, CsumOffset: 16},
		{Type: gso.TypeTCPv4, Size: 100}, // no checksum request
	}
	for _, gsoOn := range []bool{true, false} {
		offer := uint32(0)
		if gsoOn {
			offer = CapGSO
		}
		client, member, _ := gsoPair(t, offer, newServer)
		frames := make([][]byte, len(bad)+1)
		metas := make([]gso.Meta, len(bad)+1)
		for i := range bad {
			frames[i], metas[i] = frame, bad[i]
		}
		frames[len(bad)] = []byte("ok")
		if err := client.WriteFramesGSO(frames, metas); err != nil {
			t.Fatal(err)
		}
		if got := readMeta(t, member, 1); string(got[0].b) != "ok" {
			t.Fatalf("gso=%v: got %q", gsoOn, got[0].b)
		}
		if s := client.Stats(); s.TxBadMeta != uint64(len(bad)) || s.TxFrames != 1 {
			t.Fatalf("gso=%v: sender stats %+v, want %d bad metadata drops", gsoOn, s, len(bad))
		}
	}

	// A receiver checks too: a hand-made FramesGSO batch with a checksum
	// offset past its frame loses that frame, not the session.
	w := &fakeConn{}
	var e framing.Encoder
	b := e.Begin(nil, msgFramesGSO, framing.Meta, nil, MaxGSOBatchBody)
	b = e.Add(b, frame, gso.Meta{Flags: gso.NeedsCsum, CsumStart: 34, CsumOffset: 16})
	b = e.Add(b, []byte("next"), gso.Meta{})
	b = e.End(b)
	binary.BigEndian.PutUint16(b[framing.HeaderLen+1+4+2:], 500) // csumOffset of frame 0
	w.out.Write(b)
	r := NewConn(&fakeConn{Reader: bytes.NewReader(w.out.Bytes())}, Config{GSO: true})
	var got []string
	_, err := r.ReadFramesGSO(func(f []byte, _ gso.Meta) { got = append(got, string(f)) })
	if err != nil || len(got) != 1 || got[0] != "next" || r.Stats().RxBadMeta != 1 {
		t.Fatalf("read %q, %v, stats %+v: want only the second frame and one bad-metadata drop", got, err, r.Stats())
	}

	// FramesGSO on a session that did not negotiate it is a protocol error.
	r = NewConn(&fakeConn{Reader: bytes.NewReader(w.out.Bytes())}, Config{})
	if _, err := r.ReadFrames(func([]byte) {}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("FramesGSO without GSO: %v, want a protocol error", err)
	}
}

// FuzzReadFramesGSO is FuzzReadFrames for a GSO session: any stream, no
// panic, no frame over its limit, no metadata that does not fit its frame.
func FuzzReadFramesGSO(f *testing.F) {
	frame, meta := offloadFrame(false, false, 3000, 1448)
	var e framing.Encoder
	b := e.Begin(nil, msgFramesGSO, framing.Meta, nil, MaxGSOBatchBody)
	b = e.Add(b, frame, meta)
	b = e.Add(b, []byte("0123456789abcdef"), gso.Meta{Flags: gso.DataValid})
	f.Add(e.End(b), uint16(1600))
	f.Add(append(rawMessage(msgKeepalive, nil), rawMessage(msgFramesGSO, []byte{1, 0, 0, 2, 0, 0xaa, 0xbb})...), uint16(64))
	f.Fuzz(func(t *testing.T, data []byte, maxFrame uint16) {
		c := NewConn(&fakeConn{Reader: bytes.NewReader(data)}, Config{MaxFrame: int(maxFrame), GSO: true})
		limit := c.Config().MaxFrame
		for {
			_, err := c.ReadFramesGSO(func(fr []byte, m gso.Meta) {
				l := limit
				if m.Segmented() {
					l = MaxSuperFrame
				}
				if len(fr) > l || !framing.ValidMeta(m, len(fr)) {
					t.Fatalf("frame of %d bytes (limit %d) with %+v", len(fr), l, m)
				}
				if m.Segmented() {
					// What a GSO receiver hands on must be cuttable by a
					// port without GSO, or at least refused without a panic.
					gso.Split(m, fr, make([]byte, MaxSuperFrame), func([]byte) {})
				}
			})
			if err != nil {
				return
			}
		}
	})
}
