// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package tap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// fakeDevice delivers the frames sent on in, one per Read, and fails Read with
// io.EOF once closed.
type fakeDevice struct {
	in     chan []byte
	closed chan struct{}
}

func newFake() *fakeDevice {
	return &fakeDevice{in: make(chan []byte, 4096), closed: make(chan struct{})}
}

func (f *fakeDevice) Name() string            { return "fake0" }
func (f *fakeDevice) MTU() int                { return 1500 }
func (f *fakeDevice) BatchSize() int          { return 8 }
func (f *fakeDevice) Offload() ethdev.Offload { return ethdev.Offload{} }

// Read blocks for one frame, then takes what else is waiting, as a TAP's
// Read does.
func (f *fakeDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case fr := <-f.in:
		sizes[0] = copy(bufs[0][offset:], fr)
	case <-f.closed:
		return 0, io.EOF
	}
	n := 1
	for ; n < len(bufs); n++ {
		select {
		case fr := <-f.in:
			sizes[n] = copy(bufs[n][offset:], fr)
		default:
			return n, nil
		}
	}
	return n, nil
}
func (f *fakeDevice) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (f *fakeDevice) Close() error                                 { close(f.closed); return nil }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func frame(i int) []byte { return []byte(fmt.Sprintf("frame-%04d", i)) }

func TestReaderDrainsQueuedFramesInBatchesOf128InOrder(t *testing.T) {
	dev := newFake()
	r := NewReader(dev, 1600, 1024)
	defer dev.Close()
	for i := range 300 {
		dev.in <- frame(i)
	}
	waitFor(t, "300 frames queued", func() bool { q, _ := r.Stats(); return q == 300 })

	var b Batch
	next := 0
	for _, want := range []int{128, 128, 44} {
		if err := r.ReadBatch(nil, &b); err != nil {
			t.Fatal(err)
		}
		if len(b.Frames) != want {
			t.Fatalf("batch of %d frames, want %d: a burst must leave in batches of up to %d", len(b.Frames), want, MaxBatch)
		}
		for _, f := range b.Frames {
			if !bytes.Equal(f, frame(next)) {
				t.Fatalf("got %q, want %q: frames must keep their order", f, frame(next))
			}
			next++
		}
	}
	b.Release()
}

func TestReaderDropsNewestFramesWhenQueueIsFull(t *testing.T) {
	dev := newFake()
	r := NewReader(dev, 1600, 4)
	defer dev.Close()
	for i := range 10 {
		dev.in <- frame(i)
	}
	waitFor(t, "10 frames read", func() bool { q, d := r.Stats(); return q+d == 10 })
	if q, d := r.Stats(); q != 4 || d != 6 {
		t.Fatalf("queued %d dropped %d, want 4 and 6", q, d)
	}
	var b Batch
	if err := r.ReadBatch(nil, &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Frames) != 4 || !bytes.Equal(b.Frames[0], frame(0)) || !bytes.Equal(b.Frames[3], frame(3)) {
		t.Fatalf("got %q, want the 4 oldest frames", b.Frames)
	}
}

func TestReaderStopAndDeviceError(t *testing.T) {
	dev := newFake()
	r := NewReader(dev, 1600, 16)
	stop := make(chan struct{})
	close(stop)
	var b Batch
	if err := r.ReadBatch(stop, &b); !errors.Is(err, ErrStopped) {
		t.Fatalf("ReadBatch with a closed stop channel = %v, want ErrStopped", err)
	}

	dev.in <- frame(1)
	waitFor(t, "frame queued", func() bool { q, _ := r.Stats(); return q == 1 })
	dev.Close()
	<-r.Done()
	// Frames read before the device failed are still delivered, then the error.
	if err := r.ReadBatch(nil, &b); err != nil || len(b.Frames) != 1 {
		t.Fatalf("ReadBatch after close = %d frames, %v; want the queued frame", len(b.Frames), err)
	}
	if err := r.ReadBatch(nil, &b); !errors.Is(err, io.EOF) {
		t.Fatalf("ReadBatch on a closed device = %v, want its read error (EOF)", err)
	}
	if !errors.Is(r.Err(), io.EOF) {
		t.Fatalf("Err() = %v, want EOF", r.Err())
	}
}

// tokenDevice returns the same frame once per token, allocating nothing.
type tokenDevice struct {
	tokens chan struct{}
	frame  []byte
}

func (d *tokenDevice) Name() string            { return "bench0" }
func (d *tokenDevice) MTU() int                { return 1500 }
func (d *tokenDevice) BatchSize() int          { return 1 }
func (d *tokenDevice) Offload() ethdev.Offload { return ethdev.Offload{} }
func (d *tokenDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if _, ok := <-d.tokens; !ok {
		return 0, io.EOF
	}
	sizes[0] = copy(bufs[0][offset:], d.frame)
	return 1, nil
}
func (d *tokenDevice) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (d *tokenDevice) Close() error                                 { close(d.tokens); return nil }

// BenchmarkReaderBatch measures the TAP-to-session hand-off per frame, bursts of
// 64 frames; allocs/op must stay 0.
func BenchmarkReaderBatch(b *testing.B) {
	dev := &tokenDevice{tokens: make(chan struct{}, 1024), frame: make([]byte, 1514)}
	r := NewReader(dev, 1600, 1024)
	defer dev.Close()
	var batch Batch
	b.ReportAllocs()
	b.SetBytes(1514)
	for i := 0; i < b.N; {
		burst := min(64, b.N-i)
		for range burst {
			dev.tokens <- struct{}{}
		}
		for got := 0; got < burst; {
			if err := r.ReadBatch(nil, &batch); err != nil {
				b.Fatal(err)
			}
			got += len(batch.Frames)
		}
		i += burst
	}
	batch.Release()
}

// offloadFake hands out the frames sent on in with their metadata, as a TAP
// with offloads does.
type offloadFake struct {
	fakeDevice
	metas chan gso.Meta
}

func (f *offloadFake) Offload() ethdev.Offload {
	return ethdev.Offload{VnetHdr: true, Csum: true, TSO4: true, TSO6: true}
}

func (f *offloadFake) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case fr := <-f.in:
		(<-f.metas).PutVirtio(bufs[0][offset-gso.VirtioLen:])
		sizes[0] = copy(bufs[0][offset:], fr)
		return 1, nil
	case <-f.closed:
		return 0, io.EOF
	}
}

// Super-frames get 64 KiB buffers, and the queue holds at most QueueBytes of
// them whatever its frame count; an ordinary frame read into a 64 KiB buffer
// moves to a small one, so it pins 2 KiB in the queue. Metadata comes with
// each frame, and WithHeader puts it back in front.
func TestReaderSizeClassesAndByteBound(t *testing.T) {
	dev := &offloadFake{fakeDevice: *newFake(), metas: make(chan gso.Meta, 4096)}
	r := NewReader(dev, 1600, 1024)
	defer dev.Close()
	super := gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, Size: 1448, CsumStart: 34, CsumOffset: 16}
	dev.metas <- gso.Meta{}
	dev.in <- frame(0)
	waitFor(t, "the small frame queued", func() bool { q, _ := r.Stats(); return q == 1 })
	const supers = 200
	for range supers {
		dev.metas <- super
		dev.in <- make([]byte, 60000)
	}
	waitFor(t, "every super-frame read", func() bool { q, d := r.Stats(); return q+d == 1+supers })
	large := Headroom + ethdev.MaxSuperFrame
	wantQueued := (QueueBytes - smallCap) / large
	if q, d := r.Stats(); int(q) != 1+wantQueued || int(d) != supers-wantQueued {
		t.Fatalf("queued %d dropped %d, want %d and %d: the queue must stop at %d bytes of buffers", q, d, 1+wantQueued, supers-wantQueued, QueueBytes)
	}
	var b Batch
	if err := r.ReadBatch(nil, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Frames[0], frame(0)) || !b.Meta[0].IsZero() || cap(b.WithHeader(0)) != smallCap {
		t.Fatalf("the ordinary frame came back as %q, meta %+v, in a %d-byte buffer; want it in a %d-byte one", b.Frames[0], b.Meta[0], cap(b.WithHeader(0)), smallCap)
	}
	if len(b.Frames[1]) != 60000 || b.Meta[1] != super || gso.ParseVirtio(b.WithHeader(1)) != super || len(b.WithHeader(1)) != Headroom+60000 {
		t.Fatalf("super-frame: %d bytes, meta %+v, header %+v", len(b.Frames[1]), b.Meta[1], gso.ParseVirtio(b.WithHeader(1)))
	}
	b.Release()
	// Taken from the queue, the buffers no longer count against it.
	dev.metas <- super
	dev.in <- make([]byte, 60000)
	waitFor(t, "a super-frame queued after the drain", func() bool { q, _ := r.Stats(); return int(q) == 2+wantQueued })
}
