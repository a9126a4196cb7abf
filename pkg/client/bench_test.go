// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// countingTAP produces a 1400-byte frame per token and counts frames written to
// it, allocating nothing per frame.
type countingTAP struct {
	tokens  chan struct{}
	frame   []byte
	written atomic.Int64
	closed  chan struct{}
}

func newCountingTAP() *countingTAP {
	return &countingTAP{tokens: make(chan struct{}, 4096), frame: make([]byte, 1400), closed: make(chan struct{})}
}

func (c *countingTAP) Name() string            { return "bench0" }
func (c *countingTAP) MTU() int                { return 1500 }
func (c *countingTAP) BatchSize() int          { return 1 }
func (c *countingTAP) Offload() ethdev.Offload { return ethdev.Offload{} }
func (c *countingTAP) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-c.tokens:
		sizes[0] = copy(bufs[0][offset:], c.frame)
		return 1, nil
	case <-c.closed:
		return 0, io.EOF
	}
}
func (c *countingTAP) Write(bufs [][]byte, offset int) (int, error) {
	c.written.Add(int64(len(bufs)))
	return len(bufs), nil
}
func (c *countingTAP) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

func benchSession(b *testing.B) (*countingTAP, *protocol.Conn) {
	m := newTestMember(b, func(int, *protocol.LoginRequest) *protocol.LoginResult { return ok("") })
	dev := newCountingTAP()
	opts := func(o *Options) { o.Device = dev }
	runClient(b, m, nil, nil, opts)
	var sess *protocol.Conn
	select {
	case sess = <-m.sessions:
	case <-time.After(10 * time.Second):
		b.Fatal("no session")
	}
	b.Cleanup(func() { sess.Close() })
	return dev, sess
}

// BenchmarkTAPToMember: frames read from the TAP, batched by the client and
// received by a member over loopback TLS. ns/op is per 1400-byte frame.
func BenchmarkTAPToMember(b *testing.B) {
	dev, sess := benchSession(b)
	b.ReportAllocs()
	b.SetBytes(1400)
	b.ResetTimer()
	// The producer keeps at most 512 frames in flight, below the client's queue
	// of 1024, so the benchmark measures carrying frames, not dropping them.
	var got atomic.Int64
	go func() {
		for i := range b.N {
			for int64(i)-got.Load() >= 512 {
				time.Sleep(20 * time.Microsecond)
			}
			dev.tokens <- struct{}{}
		}
	}()
	for got.Load() < int64(b.N) {
		n, err := sess.ReadFrames(func([]byte) {})
		if err != nil {
			b.Fatal(err)
		}
		got.Add(int64(n))
	}
}

// BenchmarkMemberToTAP: batches of 64 frames from a member, written to the TAP
// one by one by the client. ns/op is per 1400-byte frame.
func BenchmarkMemberToTAP(b *testing.B) {
	dev, sess := benchSession(b)
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = make([]byte, 1400)
	}
	b.ReportAllocs()
	b.SetBytes(1400)
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += len(batch) {
		if err := sess.WriteFrames(batch[:min(len(batch), b.N-sent)]); err != nil {
			b.Fatal(err)
		}
	}
	for dev.written.Load() < int64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
}
