// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"bytes"
	"testing"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// BenchmarkDatagramPath is the UDP channel's per-frame cost without the
// socket: pack, seal, open and unpack, both ends on one core. Compare with
// pkg/protocol's BenchmarkTLSThroughput (the TLS path's framing and crypto).
func BenchmarkDatagramPath(b *testing.B) {
	super, superMeta := superFrames()
	// The same with the segment size a clamped MSS gives (ClampMSS): one
	// segment per datagram, none cut.
	aligned, alignedMeta := testutil.TCPSuperFrame([6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, false, false,
		47*MSSFor(1472, 14, false), uint16(MSSFor(1472, 14, false)))
	for _, suite := range []Suite{AES256GCM, ChaCha20Poly1305} {
		for _, c := range []struct {
			name   string
			frames [][]byte
			metas  []gso.Meta
		}{
			{"1400B", frames(128, 1400), nil},
			{"64B", frames(128, 64), nil},
			{"super64K", super, superMeta},
			{"super64K-clamped", [][]byte{aligned}, []gso.Meta{alignedMeta}},
		} {
			b.Run(suite.String()+"/"+c.name, func(b *testing.B) {
				s, o := pair(b, suite, "k", "k")
				lim := framing.Limits{MaxFrame: 1600, MaxSuper: gso.MaxSuperFrame}
				got := 0
				onFrame := func(f []byte, _ gso.Meta) { got += len(f) }
				p := NewPacker(s, 1600, true, func(ds [][]byte) error {
					for _, d := range ds {
						_, pl, err := o.Open(d)
						if err != nil {
							return err
						}
						Unpack(pl, lim, onFrame)
					}
					return nil
				})
				bytes := 0
				for _, f := range c.frames {
					bytes += len(f)
				}
				b.SetBytes(int64(bytes))
				b.ReportAllocs()
				for b.Loop() {
					if err := p.Pack(1472, c.frames, c.metas, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(c.frames)), "ns/frame")
				b.ReportMetric(float64(p.Stats().Datagrams)/float64(b.N), "datagrams/op")
			})
		}
	}
}

func frames(n, size int) [][]byte {
	fs := make([][]byte, n)
	for i := range fs {
		fs[i] = make([]byte, size)
	}
	return fs
}

func superFrames() ([][]byte, []gso.Meta) {
	f, m := testutil.TCPSuperFrame([6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, false, false, 65000, 1448)
	return [][]byte{f}, []gso.Meta{m}
}

// BenchmarkClampMSS is what MSS clamping adds per frame: a full-sized TCP
// segment (the common case: not a SYN, left alone), a super-frame, and a
// SYN clamped with its checksum fixed.
func BenchmarkClampMSS(b *testing.B) {
	seg, _ := testutil.TCPSuperFrame([6]byte{2}, [6]byte{4}, false, false, 1448, 0)
	super, sm := superFrames()
	syn, _ := synFrame(false, false, false, []byte{2, 4, 0x05, 0xb4, 1, 3, 3, 7})
	for _, c := range []struct {
		name string
		f    []byte
		m    gso.Meta
	}{{"segment", seg, gso.Meta{}}, {"super64K", super[0], sm[0]}, {"SYN", syn, gso.Meta{}}} {
		b.Run(c.name, func(b *testing.B) {
			mss := c.f
			if c.name == "SYN" {
				mss = bytes.Clone(c.f)
			}
			for b.Loop() {
				if c.name == "SYN" {
					copy(mss, c.f) // clamp it again each time
				}
				ClampMSS(mss, c.m, 1472)
			}
		})
	}
}
