// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"sync"
	"sync/atomic"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

const (
	// FrameCap is the capacity of a frame from NewFrame: any frame the wire
	// protocol's 16-bit length prefix can carry, and any super-frame
	// (gso.MaxSuperFrame), plus room for a header that a reader may decode in
	// place before the Ethernet bytes.
	FrameCap = 65535 + 257

	// SmallFrameCap is the capacity of a frame from NewFrameSize(n) for
	// n <= SmallFrameCap. A queued frame pins its whole buffer, so a session
	// whose egress queue is full of MTU-sized frames should hold 2 KiB buffers,
	// not 64 KiB ones: 1024 queued frames are 2 MiB instead of 64 MiB.
	SmallFrameCap = 2048

	// MediumFrameCap is the capacity of a frame from NewFrameSize(n) for
	// SmallFrameCap < n <= MediumFrameCap: a jumbo frame, or a short run of
	// TCP segments joined into a super-frame (the UDP channel's, a dozen
	// 1.4 KB segments), which would otherwise pin 64 KiB each and cut what a
	// port's queue holds (QueueBytes) to a quarter.
	MediumFrameCap = 16 << 10

	// Headroom is how many bytes of a pooled buffer lie before the frame
	// that Buf and SetLen place: a writer that owns the frame (Exclusive)
	// puts its wire header there (Room) and sends header and frame from the
	// frame's own buffer instead of copying the frame behind a header.
	Headroom = 32
)

// Frame is a pooled, reference-counted Ethernet frame buffer.
//
// A new frame carries one reference. Whoever holds a reference either passes
// it on (Port.Forward takes it) or drops it with Release; the buffer goes back
// to its pool when the last reference is dropped. Flooding to N ports adds
// references instead of copying the bytes.
type Frame struct {
	// B holds the frame bytes. It may be resliced or appended to; Release
	// resets it to the pooled buffer.
	B []byte
	// Meta is the frame's segmentation offload metadata, set by whoever fills
	// the frame (zero: an ordinary, complete frame); Release resets it. A
	// flooded frame is shared by every port's queue, so a port that must
	// segment it does so into its own buffer: B and Meta are never written
	// once the frame is forwarded.
	Meta gso.Meta

	buf []byte // the pooled buffer; B normally aliases it
	// refs is the number of references, and 1 while the frame sits in its
	// pool: so taking a frame from the pool and dropping the only reference
	// need no atomic read-modify-write, the common case on the forwarding
	// path (unicast: one reader, one writer).
	refs   atomic.Int32
	pooled bool // catches a Release of a frame already back in its pool
	pool   *sync.Pool
}

var (
	smallFrames  = sync.Pool{}
	mediumFrames = sync.Pool{}
	bigFrames    = sync.Pool{}
)

func init() {
	// The pools refer to themselves through Frame.pool, so their New funcs are
	// set here rather than in the declarations (an initialisation cycle).
	smallFrames.New = func() any { return newPooled(&smallFrames, SmallFrameCap) }
	mediumFrames.New = func() any { return newPooled(&mediumFrames, MediumFrameCap) }
	bigFrames.New = func() any { return newPooled(&bigFrames, FrameCap) }
}

func newPooled(p *sync.Pool, size int) *Frame {
	buf := make([]byte, size)
	f := &Frame{B: buf[Headroom:Headroom], buf: buf, pool: p}
	f.refs.Store(1)
	return f
}

// frameTracking counts frames handed out and not yet returned, so tests can
// prove nothing leaks. It is off by default: a counter shared by every core
// would be written twice per frame and cost the hot path its scaling.
var frameTracking struct {
	on   atomic.Bool
	live atomic.Int64
}

// NewFrame returns an empty frame (len 0) with room for FrameCap-Headroom
// bytes and one reference.
func NewFrame() *Frame { return get(&bigFrames) }

// NewFrameSize returns an empty frame with capacity of at least n and one
// reference. Readers that know the length before reading the body should use
// it: MTU-sized frames then come from a pool of 2 KiB buffers, jumbo ones
// from one of 16 KiB.
func NewFrameSize(n int) *Frame {
	switch {
	case n <= SmallFrameCap-Headroom:
		return get(&smallFrames)
	case n <= MediumFrameCap-Headroom:
		return get(&mediumFrames)
	}
	return get(&bigFrames)
}

func get(p *sync.Pool) *Frame {
	f := p.Get().(*Frame)
	f.pooled = false
	if frameTracking.on.Load() {
		frameTracking.live.Add(1)
	}
	return f
}

// Bytes returns the frame bytes (f.B).
func (f *Frame) Bytes() []byte { return f.B }

// Buf returns the pooled buffer behind the headroom, to read a frame into;
// call SetLen after.
func (f *Frame) Buf() []byte { return f.buf[Headroom:cap(f.buf)] }

// SetLen sets the frame to the first n bytes of Buf.
func (f *Frame) SetLen(n int) { f.B = f.buf[Headroom : Headroom+n] }

// Exclusive reports whether the caller's reference is the only one, so that
// nobody else reads the frame's buffer (a unicast frame in its egress
// writer's hands; a flooded one is shared until every port is done).
func (f *Frame) Exclusive() bool { return f.refs.Load() == 1 }

// Room returns the frame with the pooled bytes before it: B is the tail of
// the result, and the bytes before B may be overwritten by a caller that
// holds the frame exclusively (a header written in front of the frame). It
// returns nil when B does not lie in the pooled buffer (reallocated by an
// append).
func (f *Frame) Room() []byte {
	off := cap(f.buf) - cap(f.B)
	if off < 0 || off >= len(f.buf) || len(f.B) == 0 || &f.buf[off] != &f.B[0] {
		return nil
	}
	return f.buf[:off+len(f.B)]
}

// Retain adds a reference. The caller must already hold one.
func (f *Frame) Retain() { f.refs.Add(1) }

// Release drops one reference and returns the frame to its pool at zero. The
// caller must not touch the frame afterwards.
func (f *Frame) Release() {
	// With one reference left, the caller holds the only one, so nobody can
	// change the count concurrently and it is already the pooled value, 1.
	if f.refs.Load() != 1 {
		if f.refs.Add(-1) > 0 {
			return
		}
		f.refs.Store(1)
	}
	if f.pooled {
		panic("hub: Frame released more often than it was referenced")
	}
	f.pooled = true
	f.B = f.buf[Headroom:Headroom]
	f.Meta = gso.Meta{}
	if frameTracking.on.Load() {
		frameTracking.live.Add(-1)
	}
	f.pool.Put(f)
}

// A super-frame must fit one pooled frame.
var _ [FrameCap - Headroom - gso.MaxSuperFrame]struct{}

func releaseAll(frames []*Frame) {
	for _, f := range frames {
		f.Release()
	}
}
