// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package bridge

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/hub"
)

// Bridge is a Device attached to a hub as a PortBridge port: frames from the
// LAN enter the hub's switch, frames the switch sends to the port go to the
// LAN. One goroutine per direction; neither allocates per frame.
type Bridge struct {
	dev  Device
	port *hub.Port
	stop sync.Once
	// closing is set by Close: whatever either direction fails with after
	// that (a write racing the device's close: "use of closed file") is the
	// close itself, not a failure to report.
	closing atomic.Bool
	done    chan struct{}
	err     error // the first failure of either direction, set before done closes
}

// Attach starts bridging dev to h. The Bridge owns dev from now on.
func Attach(h *hub.Hub, dev Device, label string) *Bridge {
	b := &Bridge{dev: dev, port: h.Attach(hub.PortBridge, label), done: make(chan struct{})}
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- b.fromLAN() })
	wg.Go(func() { errs <- b.toLAN() })
	go func() {
		first := <-errs
		b.shut() // the other direction ends too
		wg.Wait()
		if b.closing.Load() || errors.Is(first, ErrClosed) || errors.Is(first, hub.ErrPortClosed) || errors.Is(first, os.ErrClosed) {
			first = nil
		}
		b.err = first
		close(b.done)
	}()
	return b
}

func (b *Bridge) shut() {
	b.stop.Do(func() {
		b.port.Close()
		_ = b.dev.Close()
	})
}

// Close detaches the port and closes the device (which ends the socket and
// everything it set up), then waits for both directions to stop.
func (b *Bridge) Close() error {
	b.closing.Store(true)
	b.shut()
	<-b.done
	return b.err
}

// Done is closed when the bridge stopped: closed, the hub closed the port,
// or the device failed (Err says how).
func (b *Bridge) Done() <-chan struct{} { return b.done }

// Err is why the bridge stopped on its own (nil after Close or a closed hub).
func (b *Bridge) Err() error {
	select {
	case <-b.done:
		return b.err
	default:
		return nil
	}
}

// Device is the LAN side (for its counters).
func (b *Bridge) Device() Device { return b.dev }

// Port is the hub side.
func (b *Bridge) Port() *hub.Port { return b.port }

func (b *Bridge) fromLAN() error {
	n := b.dev.BatchSize()
	size := gso.VirtioLen + ethdev.MaxFrame(b.dev.MTU(), b.dev.Offload())
	slots := make([]*hub.Frame, n)
	bufs := make([][]byte, n)
	sizes := make([]int, n)
	out := make([]*hub.Frame, 0, n)
	defer func() {
		for _, f := range slots {
			if f != nil {
				f.Release()
			}
		}
	}()
	for {
		for i, f := range slots {
			if f == nil {
				f = hub.NewFrameSize(size)
				slots[i] = f
			}
			bufs[i] = f.Buf()
		}
		k, err := b.dev.Read(bufs, sizes, gso.VirtioLen)
		if err != nil {
			return err
		}
		out = out[:0]
		for i := range k {
			f := slots[i]
			f.Meta = gso.ParseVirtio(bufs[i])
			f.B = bufs[i][gso.VirtioLen : gso.VirtioLen+sizes[i]]
			out = append(out, f)
			slots[i] = nil
		}
		b.port.Forward(out)
	}
}

func (b *Bridge) toLAN() error {
	n := b.dev.BatchSize()
	dst := make([]*hub.Frame, n)
	frames := make([][]byte, n)
	metas := make([]gso.Meta, n)
	mw, direct := b.dev.(MetaWriter)
	var scratch [][]byte // frames behind a virtio_net_hdr, for a Device without WriteMeta
	if !direct {
		scratch = make([][]byte, n)
	}
	for {
		k, err := b.port.Dequeue(context.Background(), dst)
		if err != nil {
			return err
		}
		if direct {
			for i := range k {
				frames[i], metas[i] = dst[i].B, dst[i].Meta
			}
			_, err = mw.WriteMeta(frames[:k], metas[:k])
		} else {
			// Hub frames are shared with other ports and have no
			// guaranteed room before them: copy each behind its header.
			for i := range k {
				f := dst[i]
				if cap(scratch[i]) < gso.VirtioLen+len(f.B) {
					scratch[i] = make([]byte, gso.VirtioLen+len(f.B))
				}
				scratch[i] = scratch[i][:gso.VirtioLen+len(f.B)]
				f.Meta.PutVirtio(scratch[i])
				copy(scratch[i][gso.VirtioLen:], f.B)
			}
			_, err = b.dev.Write(scratch[:k], gso.VirtioLen)
		}
		for i := range k {
			dst[i].Release()
			dst[i], frames[i] = nil, nil
		}
		if err != nil {
			return err
		}
	}
}
