// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package tap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

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

func frame(i int) []byte { return []byte(fmt.Sprintf("frame-%04d", i)) }

// chanSink passes each batch it is given, copied, to a channel: the test
// waits on the channel, not on time.
type chanSink struct {
	batches chan batch
	fail    error
}

type batch struct {
	frames [][]byte
	metas  []gso.Meta
}

func newChanSink() *chanSink { return &chanSink{batches: make(chan batch, 1024)} }

func (s *chanSink) WriteFramesGSO(frames [][]byte, metas []gso.Meta) error {
	err := s.fail // read before the send: the test sets it after receiving
	var b batch
	for i, f := range frames {
		b.frames = append(b.frames, bytes.Clone(f))
		b.metas = append(b.metas, metas[i])
	}
	s.batches <- b
	return err
}

// next is the sink's next batch.
func (s *chanSink) next(t *testing.T) batch {
	t.Helper()
	return <-s.batches
}

// Every read goes to the sink as one batch, in the order the device gave the
// frames, at most BatchSize frames at a time.
func TestReaderHandsEachReadToTheSinkInOrder(t *testing.T) {
	dev := newFake()
	r := NewReader(dev, 1600)
	defer dev.Close()
	defer r.Close()
	for i := range 300 {
		dev.in <- frame(i)
	}
	s := newChanSink()
	r.Attach(s)
	next, batches := 0, 0
	for next < 300 {
		b := s.next(t)
		batches++
		if len(b.frames) > dev.BatchSize() {
			t.Fatalf("a batch of %d frames, over the device's batch size %d", len(b.frames), dev.BatchSize())
		}
		for _, f := range b.frames {
			if !bytes.Equal(f, frame(next)) {
				t.Fatalf("got %q, want %q: frames must keep their order", f, frame(next))
			}
			next++
		}
	}
	if batches > 300/2 {
		t.Fatalf("300 waiting frames took %d batches: a read must take what is waiting", batches)
	}
	if r.Frames() != 300 {
		t.Fatalf("Frames() = %d, want 300", r.Frames())
	}
}

// Without a sink nothing is read: the frames wait in the device, and after a
// Detach and a new Attach they go to the new sink, not the old one.
func TestReaderWaitsForASinkAndFollowsTheAttachedOne(t *testing.T) {
	dev := newFake()
	r := NewReader(dev, 1600)
	defer dev.Close()
	defer r.Close()
	dev.in <- frame(0)
	first := newChanSink()
	r.Attach(first)
	if b := first.next(t); len(b.frames) != 1 || !bytes.Equal(b.frames[0], frame(0)) {
		t.Fatalf("first sink got %q, want frame 0", b.frames)
	}
	r.Detach()
	second := newChanSink()
	r.Attach(second)
	dev.in <- frame(1)
	if b := second.next(t); len(b.frames) != 1 || !bytes.Equal(b.frames[0], frame(1)) {
		t.Fatalf("second sink got %q, want frame 1", b.frames)
	}
	select {
	case b := <-first.batches:
		t.Fatalf("the detached sink got %q", b.frames)
	default:
	}
	// A failing sink (its session ended) does not stop the Reader.
	second.fail = errors.New("session ended")
	dev.in <- frame(2)
	second.next(t)
	dev.in <- frame(3)
	if b := second.next(t); !bytes.Equal(b.frames[0], frame(3)) {
		t.Fatalf("after a failed write the sink got %q, want frame 3", b.frames)
	}
}

func TestReaderStopAndDeviceError(t *testing.T) {
	// Close ends a Reader that waits for a sink; the device was fine.
	dev := newFake()
	r := NewReader(dev, 1600)
	r.Close()
	<-r.Done()
	if r.Err() != nil {
		t.Fatalf("Err() after Close = %v, want nil", r.Err())
	}
	dev.Close()

	dev = newFake()
	r = NewReader(dev, 1600)
	defer r.Close()
	r.Attach(newChanSink())
	dev.Close()
	<-r.Done()
	if !errors.Is(r.Err(), io.EOF) {
		t.Fatalf("Err() = %v, want the device's read error (EOF)", r.Err())
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

// countSink counts frames and signals each batch, allocating nothing.
type countSink struct{ got chan int }

func (s countSink) WriteFramesGSO(frames [][]byte, _ []gso.Meta) error {
	s.got <- len(frames)
	return nil
}

// BenchmarkReaderSink measures the device-to-sink path per frame; allocs/op
// must stay 0.
func BenchmarkReaderSink(b *testing.B) {
	dev := &tokenDevice{tokens: make(chan struct{}, 1024), frame: make([]byte, 1514)}
	r := NewReader(dev, 1600)
	defer dev.Close()
	defer r.Close()
	s := countSink{got: make(chan int, 1024)}
	r.Attach(s)
	b.ReportAllocs()
	b.SetBytes(1514)
	for i := 0; i < b.N; {
		burst := min(64, b.N-i)
		for range burst {
			dev.tokens <- struct{}{}
		}
		for got := 0; got < burst; {
			got += <-s.got
		}
		i += burst
	}
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

// A super-frame reaches the sink whole with its metadata, an ordinary frame
// with none.
func TestReaderPassesOffloadMetadata(t *testing.T) {
	dev := &offloadFake{fakeDevice: *newFake(), metas: make(chan gso.Meta, 16)}
	r := NewReader(dev, 1600)
	defer dev.Close()
	defer r.Close()
	s := newChanSink()
	r.Attach(s)
	super := gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, Size: 1448, CsumStart: 34, CsumOffset: 16}
	dev.metas <- gso.Meta{}
	dev.in <- frame(0)
	if b := s.next(t); !bytes.Equal(b.frames[0], frame(0)) || !b.metas[0].IsZero() {
		t.Fatalf("ordinary frame: %q, meta %+v", b.frames[0], b.metas[0])
	}
	dev.metas <- super
	dev.in <- make([]byte, 60000)
	if b := s.next(t); len(b.frames[0]) != 60000 || b.metas[0] != super {
		t.Fatalf("super-frame: %d bytes, meta %+v; want 60000 bytes whole with %+v", len(b.frames[0]), b.metas[0], super)
	}
}

// roomSink is a chanSink that takes frames with their room (RoomSink).
type roomSink struct {
	*chanSink
	t *testing.T
}

func (s *roomSink) WriteFramesRoom(frames [][]byte, metas []gso.Meta, rooms [][]byte) error {
	for i, f := range frames {
		r := rooms[i]
		// protocol.DirectHeader: the header a Conn writes in front of a frame.
		if len(r) < len(f)+18 || &r[len(r)-len(f)] != &f[0] {
			s.t.Errorf("frame %d: room of %d bytes for a %d-byte frame, want the frame as its tail behind 18 bytes or more", i, len(r), len(f))
		}
		// The sink may overwrite the room: the next frames must not mind.
		clear(r[:len(r)-len(f)])
	}
	return s.WriteFramesGSO(frames, metas)
}

// A Sink that can send frames from their own buffers (RoomSink) gets them with
// room in front, which it may overwrite.
func TestReaderGivesARoomSinkRoom(t *testing.T) {
	dev := newFake()
	r := NewReader(dev, 1600)
	defer dev.Close()
	defer r.Close()
	for i := range 50 {
		dev.in <- frame(i)
	}
	s := &roomSink{chanSink: newChanSink(), t: t}
	r.Attach(s)
	for next := 0; next < 50; {
		for _, f := range s.next(t).frames {
			if !bytes.Equal(f, frame(next)) {
				t.Fatalf("got %q, want %q", f, frame(next))
			}
			next++
		}
	}
}
