// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package tap

import (
	"sync"
	"sync/atomic"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// Headroom is the room before each frame in a Reader's buffers: the
// virtio_net_hdr the device reads with it.
const Headroom = gso.VirtioLen

// sendRoom is the room a Reader keeps in front of each buffer's virtio_net_hdr,
// so that a Sink that writes a frame from its buffer (RoomSink) has room for
// its wire header there: with the header's own bytes, which are parsed before
// the Sink sees the frame, at least protocol.DirectHeader (18) bytes.
const sendRoom = 16

// RoomSink is a Sink that sends long frames from their own buffers, its
// header written into the bytes in front of them (protocol.Conn's
// WriteFramesRoom): rooms[i] is frames[i] extended to the front. A Reader
// prefers it, which saves a copy of every super-frame it reads.
type RoomSink interface {
	WriteFramesRoom(frames [][]byte, metas []gso.Meta, rooms [][]byte) error
}

// postedBytes bounds the buffers each queue's reader keeps posted to Read:
// what a client pins per queue (four 64 KiB super-frame buffers, or up to
// BatchSize small ones).
const postedBytes = 256 << 10

// Sink takes the frames a Reader read, in the reading goroutine:
// protocol.Conn is one. frames and metas are valid only during the call. A
// Reader of a multi-queue device calls it from each queue's goroutine, so it
// must be safe for concurrent use.
type Sink interface {
	WriteFramesGSO(frames [][]byte, metas []gso.Meta) error
}

// Reader reads frames from a Device, one goroutine per device queue, and
// hands each read's batch straight to the attached Sink from the goroutine
// that read it: TAP read, encode and TLS write run one after the other on one
// thread, so no frame waits in a queue for another goroutine to wake up. That
// hand-off (a channel between the TAP readers and the session's writer) cost
// a thread park and wake per batch, the largest item of a client's profile on
// a small machine. A Reader outlives the sessions that consume it: a VPN
// client keeps one for the life of its TAP device and attaches each session
// in turn.
//
// While no Sink is attached the readers do not read: frames wait in the
// kernel's queue of the device (its txqueuelen; beyond that the kernel drops
// them, as a switch port with its link down would), and the next session
// sends them. A Sink slower than the TAP holds its reader in the write, so the
// kernel's queue fills and drops instead of a queue here.
type Reader struct {
	size int // buffer room per frame after Headroom

	sink  atomic.Pointer[sinkRef]
	mu    sync.Mutex
	ready chan struct{} // closed while a Sink is attached; guarded by mu
	stop  chan struct{}
	shut  sync.Once

	done chan struct{}
	err  error // the first queue's read error, set before done is closed
	once sync.Once

	frames atomic.Uint64
}

type sinkRef struct{ s Sink }

// NewReader starts reading dev, one goroutine per queue (Queues). frameSize
// is the least buffer room per frame (the MTU plus FrameOverhead); a device
// with segmentation offload gets room for a super-frame whatever it says.
func NewReader(dev Device, frameSize int) *Reader {
	r := &Reader{
		size:  max(frameSize, ethdev.MaxFrame(dev.MTU(), dev.Offload())),
		ready: make(chan struct{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	qs := Queues(dev)
	var wg sync.WaitGroup
	for _, q := range qs {
		wg.Go(func() { r.loop(q) })
	}
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r
}

// Attach makes s the destination of every frame read from now on, replacing
// any Sink attached before.
func (r *Reader) Attach(s Sink) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wasNil := r.sink.Swap(&sinkRef{s}) == nil
	if wasNil {
		close(r.ready)
	}
}

// Detach stops handing frames to the attached Sink; a batch already in its
// WriteFramesGSO finishes there (or fails with the session).
func (r *Reader) Detach() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sink.Swap(nil) != nil {
		r.ready = make(chan struct{})
	}
}

// Close stops the readers that wait for a Sink; one blocked in the device's
// Read ends when the device is closed.
func (r *Reader) Close() { r.shut.Do(func() { close(r.stop) }) }

// current is the attached Sink, waiting for one; nil once the Reader is closed.
func (r *Reader) current() Sink {
	for {
		if ref := r.sink.Load(); ref != nil {
			return ref.s
		}
		r.mu.Lock()
		ready := r.ready
		r.mu.Unlock()
		select {
		case <-ready:
		case <-r.stop:
			return nil
		}
	}
}

func (r *Reader) loop(dev Device) {
	posted := min(max(dev.BatchSize(), 1), max(postedBytes/(sendRoom+Headroom+r.size), 1))
	bufs := make([][]byte, posted)  // what the device reads into
	whole := make([][]byte, posted) // the same behind sendRoom bytes
	for i := range bufs {
		whole[i] = make([]byte, sendRoom+Headroom+r.size)
		bufs[i] = whole[i][sendRoom:]
	}
	sizes := make([]int, posted)
	frames := make([][]byte, posted)
	rooms := make([][]byte, posted)
	metas := make([]gso.Meta, posted)
	for {
		if r.current() == nil {
			return
		}
		k, err := dev.Read(bufs, sizes, Headroom)
		if err != nil {
			r.once.Do(func() { r.err = err })
			return
		}
		for i := range k {
			frames[i] = bufs[i][Headroom : Headroom+sizes[i]]
			rooms[i] = whole[i][:sendRoom+Headroom+sizes[i]]
			metas[i] = gso.ParseVirtio(bufs[i])
		}
		// The session may have changed while Read waited: the frames go to
		// the one attached now.
		s := r.current()
		if s == nil {
			return
		}
		// A failed write ends its session, which attaches the next Sink;
		// these frames are lost with it, as on a link that went down.
		if rs, ok := s.(RoomSink); ok {
			_ = rs.WriteFramesRoom(frames[:k], metas[:k], rooms[:k])
		} else {
			_ = s.WriteFramesGSO(frames[:k], metas[:k])
		}
		r.frames.Add(uint64(k))
		clear(frames[:k])
		clear(rooms[:k])
	}
}

// Done is closed when the Reader has stopped because the Device failed or was
// closed, or Close was called; Err then says why the Device failed.
func (r *Reader) Done() <-chan struct{} { return r.done }

// Err is the Device's read error once Done is closed, else nil.
func (r *Reader) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// Frames is the number of frames handed to Sinks so far.
func (r *Reader) Frames() uint64 { return r.frames.Load() }
