// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// fakeExporter stands in for a TLS session's exporter: a keyed function of
// label and context, as the real one is.
func fakeExporter(secret string) Exporter {
	return func(label string, ctx []byte, n int) ([]byte, error) {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(label))
		m.Write(ctx)
		return m.Sum(nil)[:n], nil
	}
}

var testSID = SessionID{1, 2, 3, 4, 5, 6, 7, 8}

// pair is a client's sealer and the server's opener for one direction.
func pair(t testing.TB, suite Suite, clientSecret, serverSecret string) (*Sealer, *Opener) {
	t.Helper()
	s, err := NewSealer(Params{Session: testSID, Suite: suite, Role: Client, Exporter: fakeExporter(clientSecret)})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOpener(Params{Session: testSID, Suite: suite, Role: Server, Exporter: fakeExporter(serverSecret)})
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

func seal(t testing.TB, s *Sealer, payload string) []byte {
	t.Helper()
	b := make([]byte, HeaderLen, HeaderLen+len(payload)+TagLen)
	b = append(b, payload...)
	d, err := s.Seal(TypeKeepalive, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSealOpenBothSuites(t *testing.T) {
	for _, suite := range []Suite{AES256GCM, ChaCha20Poly1305} {
		t.Run(suite.String(), func(t *testing.T) {
			s, o := pair(t, suite, "k", "k")
			d := seal(t, s, "hello")
			h, p, err := o.Open(bytes.Clone(d))
			if err != nil || string(p) != "hello" || h.Type != TypeKeepalive || h.Counter != 0 {
				t.Fatalf("Open = %+v %q %v", h, p, err)
			}
		})
	}
}

// The directions have their own keys: a datagram the client sent cannot be
// reflected back to the client as if the server sent it.
func TestDirectionsDiffer(t *testing.T) {
	s, _ := pair(t, AES256GCM, "k", "k")
	clientOpener, err := NewOpener(Params{Session: testSID, Suite: AES256GCM, Role: Client, Exporter: fakeExporter("k")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := clientOpener.Open(seal(t, s, "x")); !errors.Is(err, ErrAuth) {
		t.Fatalf("reflected datagram: %v, want ErrAuth", err)
	}
}

func TestWrongKeyAndTampering(t *testing.T) {
	s, o := pair(t, ChaCha20Poly1305, "right", "wrong")
	if _, _, err := o.Open(seal(t, s, "x")); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v, want ErrAuth", err)
	}
	s, o = pair(t, AES256GCM, "k", "k")
	for i := range HeaderLen + 1 + TagLen {
		d := seal(t, s, "y")
		d[i] ^= 0x40
		_, _, err := o.Open(d)
		if err == nil {
			t.Fatalf("byte %d altered: accepted", i)
		}
	}
	// Nothing above authenticated, so the window still accepts every
	// counter the sender used.
	if _, _, err := o.Open(seal(t, s, "z")); err != nil {
		t.Fatalf("after forgeries: %v", err)
	}
	d := seal(t, s, "other session")
	d[1] ^= 1
	if _, _, err := o.Open(d); !errors.Is(err, ErrSession) {
		t.Fatalf("other session ID: %v, want ErrSession", err)
	}
	if _, _, err := o.Open(d[:Overhead-1]); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v, want ErrShort", err)
	}
}

func TestReplayWindow(t *testing.T) {
	s, o := pair(t, AES256GCM, "k", "k")
	var ds [][]byte
	for range 3 * ReplayWindow {
		ds = append(ds, seal(t, s, "p"))
	}
	open := func(i int) error { _, _, err := o.Open(bytes.Clone(ds[i])); return err }
	// Reordered within the window: accepted once each.
	for _, i := range []int{5, 2, 9, 0, 1, 3, 4, 8, 7, 6} {
		if err := open(i); err != nil {
			t.Fatalf("counter %d: %v", i, err)
		}
	}
	for i := range 10 {
		if err := open(i); !errors.Is(err, ErrReplay) {
			t.Fatalf("replayed counter %d: %v, want ErrReplay", i, err)
		}
	}
	// Jump ahead; a counter just inside the window is still new, one past
	// it is too old even though it was never seen.
	last := 2*ReplayWindow + 100
	if err := open(last); err != nil {
		t.Fatal(err)
	}
	if err := open(last - ReplayWindow + 1); err != nil {
		t.Fatalf("oldest counter in the window: %v", err)
	}
	if err := open(last - ReplayWindow); !errors.Is(err, ErrReplay) {
		t.Fatalf("counter behind the window: %v, want ErrReplay", err)
	}
	if err := open(last); !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate of the newest: %v", err)
	}
}

// The window against a model (a set of seen counters) under random
// reordering, duplication and jumps.
func TestWindowModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var w Window
	seen := map[uint64]bool{}
	var top uint64
	for range 200000 {
		var c uint64
		switch r.IntN(4) {
		case 0:
			c = top + uint64(r.IntN(3*ReplayWindow))
		default:
			c = top - min(top, uint64(r.IntN(ReplayWindow+200)))
		}
		want := !seen[c] && (len(seen) == 0 || c > top || top-c < ReplayWindow)
		if got := w.Accept(c); got != want {
			t.Fatalf("Accept(%d) with top %d = %v, want %v", c, top, got, want)
		}
		if want {
			seen[c] = true
			top = max(top, c)
		}
	}
}

func TestRekey(t *testing.T) {
	s, o := pair(t, AES256GCM, "k", "k")
	s.rekeyAfter = 100
	var late [][]byte
	for i := range 1000 {
		d := seal(t, s, "r")
		// Every tenth datagram is held back and delivered after the next
		// rekey: the previous epoch's key must still open it.
		if i%10 == 9 {
			late = append(late, d)
			continue
		}
		if _, _, err := o.Open(d); err != nil {
			t.Fatalf("datagram %d (epoch %d): %v", i, s.Epoch(), err)
		}
		if len(late) > 0 && i%100 == 5 {
			for _, l := range late {
				if _, _, err := o.Open(l); err != nil {
					t.Fatalf("late datagram after rekey: %v", err)
				}
			}
			late = late[:0]
		}
	}
	if s.Epoch() != 9 && s.Epoch() != 10 || o.Epoch() != s.Epoch() {
		t.Fatalf("epochs: sender %d, receiver %d", s.Epoch(), o.Epoch())
	}
	// Epochs further back are gone.
	d := seal(t, s, "x")
	d[1+SessionIDLen] -= 3 // the receiver holds the epoch before its current one and the next
	if _, _, err := o.Open(d); !errors.Is(err, ErrEpoch) {
		t.Fatalf("stale epoch: %v, want ErrEpoch", err)
	}
}

func TestRekeyAfterTime(t *testing.T) {
	s, o := pair(t, AES256GCM, "k", "k")
	now := time.Now()
	s.now = func() time.Time { return now }
	s.epochStart = now
	if _, _, err := o.Open(seal(t, s, "a")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(RekeyAfterTime - time.Second)
	if _, _, err := o.Open(seal(t, s, "b")); err != nil || s.Epoch() != 0 {
		t.Fatalf("rekeyed early: epoch %d, %v", s.Epoch(), err)
	}
	now = now.Add(time.Second)
	if _, _, err := o.Open(seal(t, s, "c")); err != nil {
		t.Fatal(err)
	}
	if s.Epoch() != 1 || o.Epoch() != 1 {
		t.Fatalf("after RekeyAfterTime: sender epoch %d, receiver %d", s.Epoch(), o.Epoch())
	}
}

// Keys from a real TLS 1.3 session: both ends derive the same pair.
func TestTLSExporter(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert, err := tls.X509KeyPair(pki.Server.CertPEM, pki.Server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	cli := tls.Client(b, &tls.Config{RootCAs: pki.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS13})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.HandshakeContext(ctx) }()
	if err := cli.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	cp := Params{Session: testSID, Suite: PreferredSuite(), Role: Client, Exporter: TLSExporter(cli.ConnectionState())}
	sp := Params{Session: testSID, Suite: PreferredSuite(), Role: Server, Exporter: TLSExporter(srv.ConnectionState())}
	cs, _ := NewSealer(cp)
	so, _ := NewOpener(sp)
	ss, _ := NewSealer(sp)
	co, _ := NewOpener(cp)
	if _, p, err := so.Open(seal(t, cs, "up")); err != nil || string(p) != "up" {
		t.Fatalf("client to server: %q %v", p, err)
	}
	if _, p, err := co.Open(seal(t, ss, "down")); err != nil || string(p) != "down" {
		t.Fatalf("server to client: %q %v", p, err)
	}
}

// collect packs frames and opens and unpacks every datagram.
func collect(t *testing.T, p *Packer, o *Opener, size int, frames [][]byte, metas []gso.Meta) (got [][]byte, gotMeta []gso.Meta, tooBig []int, dgrams int) {
	t.Helper()
	p.Flush = func(ds [][]byte) error {
		for _, d := range ds {
			dgrams++
			if len(d) > size {
				t.Fatalf("datagram of %d bytes for a %d-byte path", len(d), size)
			}
			h, pl, err := o.Open(d)
			if err != nil || h.Type != TypeData {
				t.Fatalf("Open: %v (type %d)", err, h.Type)
			}
			_, _, err = Unpack(pl, framing.Limits{MaxFrame: 1600, MaxSuper: gso.MaxSuperFrame}, func(f []byte, m gso.Meta) {
				got = append(got, bytes.Clone(f))
				gotMeta = append(gotMeta, m)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	if err := p.Pack(size, frames, metas, func(i int) { tooBig = append(tooBig, i) }); err != nil {
		t.Fatal(err)
	}
	return
}

func TestPackSmallFramesShareDatagrams(t *testing.T) {
	s, o := pair(t, AES256GCM, "k", "k")
	p := NewPacker(s, 1600, true, nil)
	var frames [][]byte
	for i := range 200 {
		frames = append(frames, bytes.Repeat([]byte{byte(i)}, 60+i))
	}
	got, _, tooBig, n := collect(t, p, o, 1400, frames, nil)
	if len(tooBig) != 0 || len(got) != len(frames) {
		t.Fatalf("%d frames back, %d too big", len(got), len(tooBig))
	}
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	total := 0
	for _, f := range frames {
		total += len(f) + 4
	}
	// Greedy packing leaves at most one frame's worth (≤ 263 bytes) empty
	// per datagram.
	if most := total/(1400-Overhead-1-263) + 1; n > most {
		t.Fatalf("%d datagrams for %d bytes of frames, want at most %d", n, total, most)
	}
}

// A TCP super-frame is cut to the datagram size, whatever segment size the
// sender chose, and a plain MTU-sized TCP frame too; a UDP frame too long is
// left to TLS.
func TestPackResegmentsTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		s, o := pair(t, AES256GCM, "k", "k")
		p := NewPacker(s, 1600, false, nil)
		dst, src := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
		super, sm := testutil.TCPSuperFrame(dst, src, v6, false, 60000, 1448)
		plain, pm := testutil.TCPSuperFrame(dst, src, v6, true, 1448, 0)
		udp := make([]byte, 1514)
		copy(udp, plain[:14])
		udp[12], udp[13], udp[14], udp[23] = 0x08, 0x00, 0x45, 17
		got, _, tooBig, _ := collect(t, p, o, 1280, [][]byte{super, plain, udp}, []gso.Meta{sm, pm, {}})
		if len(tooBig) != 1 || tooBig[0] != 2 {
			t.Fatalf("v6=%v: too big %v, want [2]", v6, tooBig)
		}
		payload := 0
		for _, f := range got {
			l3, _, _ := gso.L3Offset(f)
			hl := 20
			if v6 {
				hl = 40
			}
			payload += len(f) - l3 - hl - 20
			if !tcpChecksumOK(f, l3, v6) {
				t.Fatalf("v6=%v: a segment's TCP checksum is wrong", v6)
			}
		}
		if payload != 60000+1448 || len(got) < 60000/1200 {
			t.Fatalf("v6=%v: %d segments carry %d payload bytes", v6, len(got), payload)
		}
		if st := p.Stats(); st.Resegmented != 2 || st.TooBig != 1 {
			t.Fatalf("stats %+v", st)
		}
	}
}

func tcpChecksumOK(f []byte, l3 int, v6 bool) bool {
	var sum uint64
	l4 := l3 + 20
	if v6 {
		l4 = l3 + 40
		sum = gso.CsumAdd(0, f[l3+8:l3+40])
	} else {
		sum = gso.CsumAdd(0, f[l3+12:l3+20])
	}
	sum += 6 + uint64(len(f)-l4)
	return gso.CsumFold(gso.CsumAdd(sum, f[l4:])) == 0xffff
}

// The hot path allocates nothing: packing, sealing, opening, unpacking.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	s, o := pair(t, PreferredSuite(), "k", "k")
	frames := [][]byte{make([]byte, 1400), make([]byte, 80), make([]byte, 600)}
	dst, src := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	super, sm := testutil.TCPSuperFrame(dst, src, false, false, 30000, 1448)
	frames = append(frames, super)
	metas := []gso.Meta{{}, {}, {}, sm}
	delivered := 0
	var onFrame = func(f []byte, m gso.Meta) { delivered++ }
	lim := framing.Limits{MaxFrame: 1600, MaxSuper: gso.MaxSuperFrame}
	var openErr error
	p := NewPacker(s, 1600, true, func(ds [][]byte) error {
		for _, d := range ds {
			_, pl, err := o.Open(d)
			if err != nil {
				openErr = err
				return err
			}
			Unpack(pl, lim, onFrame)
		}
		return nil
	})
	p.Pack(1472, frames, metas, nil) // warm the pool
	allocs := testing.AllocsPerRun(200, func() {
		if err := p.Pack(1472, frames, metas, nil); err != nil {
			t.Fatal(err)
		}
	})
	if openErr != nil || delivered == 0 {
		t.Fatalf("open: %v, %d delivered", openErr, delivered)
	}
	if allocs > 0 {
		t.Fatalf("%v allocations per Pack of %d frames", allocs, len(frames))
	}
}

func TestProbes(t *testing.T) {
	s, o := pair(t, AES256GCM, "k", "k")
	b := make([]byte, MaxDatagram)
	d, err := s.SealProbe(b, 7, 1400)
	if err != nil || len(d) != 1400 {
		t.Fatalf("probe of %d bytes: %v", len(d), err)
	}
	h, pl, err := o.Open(d)
	id, ok := ParseProbe(pl)
	if err != nil || h.Type != TypeProbe || !ok || id != 7 {
		t.Fatalf("probe: %v %d %v %d", err, h.Type, ok, id)
	}
	d, _ = s.SealProbeAck(b, 7, 1400)
	_, pl, err = o.Open(d)
	id, size, ok := ParseProbeAck(pl)
	if err != nil || !ok || id != 7 || size != 1400 {
		t.Fatalf("ack: %v %v %d %d", err, ok, id, size)
	}
}
