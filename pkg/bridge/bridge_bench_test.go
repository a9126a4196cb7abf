// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package bridge

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/hub"
)

// benchDevice hands the bridge frames as fast as it asks, n in all, then
// reports itself closed; writes are counted.
type benchDevice struct {
	frame   []byte
	left    atomic.Int64
	written atomic.Int64
	drained chan struct{} // closed when every frame was handed out
	closed  chan struct{}
}

func (d *benchDevice) Name() string            { return "bench" }
func (d *benchDevice) MTU() int                { return 1500 }
func (d *benchDevice) BatchSize() int          { return DefaultBatch }
func (d *benchDevice) Offload() ethdev.Offload { return ethdev.Offload{} }
func (d *benchDevice) Stats() DeviceStats      { return DeviceStats{} }
func (d *benchDevice) Close() error            { return nil }
func (d *benchDevice) Write(bufs [][]byte, offset int) (int, error) {
	d.written.Add(int64(len(bufs)))
	return len(bufs), nil
}

func (d *benchDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := int(min(int64(len(bufs)), d.left.Load()))
	if n <= 0 {
		close(d.drained)
		<-d.closed
		return 0, ErrClosed
	}
	d.left.Add(-int64(n))
	for i := range n {
		sizes[i] = copy(bufs[i][offset:], d.frame)
	}
	return n, nil
}

// BenchmarkBridgeFromLAN is the LAN → hub direction without a kernel: frames
// read in batches into pooled hub frames and forwarded to a client port. One
// op is one 1400-byte frame; allocs/op shows nothing is allocated per frame.
func BenchmarkBridgeFromLAN(b *testing.B) {
	h := hub.New("bench", hub.Options{})
	defer h.Close()
	sink := h.Attach(hub.PortSession, "client")
	f := make([]byte, 1400)
	copy(f, []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x88, 0xb5})
	dev := &benchDevice{frame: f, drained: make(chan struct{}), closed: make(chan struct{})}
	dev.left.Store(int64(b.N))
	go func() {
		// The client side drains what it can; a full queue drops (counted by
		// the hub), as a slow session would.
		dst := make([]*hub.Frame, 128)
		for {
			n, err := sink.Dequeue(context.Background(), dst)
			if err != nil {
				return
			}
			for _, fr := range dst[:n] {
				fr.Release()
			}
		}
	}()
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	b.ResetTimer()
	br := Attach(h, dev, "bench")
	<-dev.drained
	b.StopTimer()
	close(dev.closed)
	_ = br.Close()
}
