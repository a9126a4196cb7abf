// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"context"
	"errors"
	"testing"
	"time"
)

// result waits for a Dequeue started in another goroutine, failing the test
// if it has not returned by the deadline.
type dqResult struct {
	n   int
	err error
}

func dequeueAsync(ctx context.Context, p *Port, buf []*Frame) <-chan dqResult {
	ch := make(chan dqResult, 1)
	go func() {
		n, err := p.Dequeue(ctx, buf)
		ch <- dqResult{n, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan dqResult) dqResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Dequeue did not return")
		return dqResult{}
	}
}

func TestDequeueReturnsForwardedFrames(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a := h.Attach(PortSession, "a")
	b := h.Attach(PortSession, "b")
	buf := make([]*Frame, 8)
	ch := dequeueAsync(context.Background(), b, buf)
	a.Forward([]*Frame{ethFrame(bcast, macA, untag, 64, 1), ethFrame(bcast, macA, untag, 64, 2)})
	r := await(t, ch)
	if r.err != nil || r.n < 1 {
		t.Fatalf("Dequeue = %d, %v", r.n, r.err)
	}
	n := r.n + b.TryDequeue(buf[r.n:])
	if n != 2 || buf[0].B[14] != 1 || buf[1].B[14] != 2 {
		t.Fatalf("got %d frames, want both in order", n)
	}
	releaseAll(buf[:n])
}

func TestDequeueHonoursContext(t *testing.T) {
	h := newTestHub(t, Options{})
	p := h.Attach(PortSession, "a")
	ctx, cancel := context.WithCancel(context.Background())
	ch := dequeueAsync(ctx, p, make([]*Frame, 1))
	cancel()
	if r := await(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Errorf("Dequeue error %v, want context.Canceled", r.err)
	}
}

func TestCloseWakesDequeueAndReleasesQueuedFrames(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a := h.Attach(PortSession, "a")
	b := h.Attach(PortSession, "b")
	reader := h.Attach(PortSession, "reader")
	buf := make([]*Frame, 1)

	ch := dequeueAsync(context.Background(), reader, buf)
	send(a, bcast, macA) // queued on b, which never reads, and on reader
	if r := await(t, ch); r.n != 1 || r.err != nil {
		t.Fatalf("reader Dequeue = %d, %v", r.n, r.err)
	}
	buf[0].Release()

	// Close while the reader is (most likely) blocked in Dequeue; either way
	// it must return ErrPortClosed, and b's queued frame must be released.
	ch = dequeueAsync(context.Background(), reader, buf)
	h.Close()
	if r := await(t, ch); r.n != 0 || !errors.Is(r.err, ErrPortClosed) {
		t.Errorf("Dequeue across hub Close = %d, %v; want ErrPortClosed", r.n, r.err)
	}
	if n, err := b.Dequeue(context.Background(), buf); n != 0 || !errors.Is(err, ErrPortClosed) {
		t.Errorf("Dequeue on closed port with frames queued before Close = %d, %v", n, err)
	}
	if got := liveFrames(); got != 0 {
		t.Errorf("%d frames still referenced after Close", got)
	}
	if h.Ports() != 0 {
		t.Errorf("%d ports after Close", h.Ports())
	}
	late := h.Attach(PortSession, "late")
	if _, err := late.Dequeue(context.Background(), buf); !errors.Is(err, ErrPortClosed) {
		t.Errorf("port attached after hub Close: %v, want ErrPortClosed", err)
	}
	late.Forward([]*Frame{ethFrame(bcast, macB, untag, 64, 0)}) // released, not leaked
}

func TestFloodSharesOneBuffer(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	src := h.Attach(PortSession, "src")
	ports := make([]*Port, 5)
	for i := range ports {
		ports[i] = h.Attach(PortSession, "p")
	}
	f := ethFrame(bcast, macA, untag, 64, 0)
	src.Forward([]*Frame{f})
	buf := make([]*Frame, 1)
	for i, p := range ports {
		if p.TryDequeue(buf) != 1 || buf[0] != f {
			t.Fatalf("port %d did not get the same frame object", i)
		}
		// Every receiver holds its own reference: the buffer must survive
		// the first four releases.
		buf[0].Release()
		if want := int64(1); i < len(ports)-1 && liveFrames() != want {
			t.Fatalf("after %d releases %d frames live, want %d", i+1, liveFrames(), want)
		}
	}
}

func TestFrameBuffers(t *testing.T) {
	trackFrames(t)
	big, jumbo := NewFrame(), NewFrameSize(9000)
	if got := cap(big.Buf()); got < 65535 {
		t.Errorf("NewFrame capacity %d, want >= 65535", got)
	}
	if got := cap(jumbo.Buf()); got < 9000 {
		t.Errorf("NewFrameSize(9000) capacity %d", got)
	}
	big.Release()
	jumbo.Release()

	f := NewFrameSize(100)
	if len(f.Bytes()) != 0 {
		t.Errorf("new frame not empty")
	}
	n := copy(f.Buf(), "0123456789abcdef")
	f.SetLen(n)
	if string(f.Bytes()) != "0123456789abcdef" {
		t.Errorf("SetLen: %q", f.Bytes())
	}
	f.Retain()
	f.Release()
	if liveFrames() != 1 {
		t.Fatalf("frame returned to the pool while a retained reference remained")
	}
	f.Release()
	if liveFrames() != 0 {
		t.Fatalf("frame not returned after its last reference")
	}
	defer func() {
		if recover() == nil {
			t.Error("releasing a frame already back in its pool did not panic")
		}
	}()
	f.Release()
}
