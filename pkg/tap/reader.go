// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package tap

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// MaxBatch is the most frames one ReadBatch returns: the wire protocol's limit of
// frames per Frames message.
const MaxBatch = 128

// Headroom is the room before each frame in a Reader's buffers: the
// virtio_net_hdr the device reads with it.
const Headroom = gso.VirtioLen

// smallCap is the buffer size class for ordinary frames (an MTU of 1500 and
// its Ethernet overhead fit); a super-frame gets a buffer of the large class.
const smallCap = 2048

// postedBytes bounds the buffers each queue's reader keeps posted to Read:
// what an idle client pins per queue (four 64 KiB super-frame buffers, or
// up to 64 small ones).
const postedBytes = 256 << 10

// QueueBytes bounds the buffer bytes a Reader's queue pins, beside its frame
// count: 1024 queued super-frames would otherwise hold 64 MiB.
const QueueBytes = 8 << 20

// ErrStopped is what ReadBatch returns when its stop channel closes first.
var ErrStopped = errors.New("tap: batch read stopped")

// Reader reads frames from a Device, one goroutine per device queue, into
// pooled buffers and queues them, so a consumer can take everything that is
// ready in one batch. It outlives the sessions that consume it: a VPN client
// keeps one Reader for the life of its TAP device and hands it from session
// to session across reconnects.
//
// Buffers come in two size classes. A reader posts large buffers (room for a
// 64 KiB super-frame) to Read only when the device hands out super-frames;
// an ordinary frame read into one is copied into a small buffer, so the
// queue holds 64 KiB only for frames that need it, and both classes live in
// sync.Pools the garbage collector empties when the client is idle.
//
// When the queue is full (no session, or a session slower than the TAP: its
// frame count or QueueBytes of buffers) the newest frame is dropped and
// counted, as a switch port would; TCP inside the tunnel backs off on its own.
type Reader struct {
	size  int // buffer room per frame after Headroom
	small sync.Pool
	large sync.Pool
	queue chan queued
	done  chan struct{}
	err   error // the first queue's read error, set before done is closed
	once  sync.Once

	dropped atomic.Uint64
	frames  atomic.Uint64
	pinned  atomic.Int64 // buffer bytes in the queue
}

type queued struct {
	bp   *[]byte
	n    int
	meta gso.Meta
}

// NewReader starts reading dev, one goroutine per queue (Queues). frameSize
// is the least buffer room per frame (the MTU plus FrameOverhead); a device
// with segmentation offload gets room for a super-frame whatever it says.
// queueLen bounds the frames waiting for a consumer.
func NewReader(dev Device, frameSize, queueLen int) *Reader {
	r := &Reader{
		size:  max(frameSize, ethdev.MaxFrame(dev.MTU(), dev.Offload())),
		queue: make(chan queued, queueLen),
		done:  make(chan struct{}),
	}
	r.small.New = func() any {
		b := make([]byte, smallCap)
		return &b
	}
	r.large.New = func() any {
		b := make([]byte, Headroom+r.size)
		return &b
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

func (r *Reader) isLarge() bool { return Headroom+r.size > smallCap }

func (r *Reader) get(large bool) *[]byte {
	if large {
		return r.large.Get().(*[]byte)
	}
	return r.small.Get().(*[]byte)
}

func (r *Reader) put(bp *[]byte) {
	*bp = (*bp)[:cap(*bp)]
	if cap(*bp) > smallCap {
		r.large.Put(bp)
	} else {
		r.small.Put(bp)
	}
}

func (r *Reader) loop(dev Device) {
	large := r.isLarge()
	posted := min(max(dev.BatchSize(), 1), max(postedBytes/(Headroom+r.size), 1))
	slots := make([]*[]byte, posted)
	bufs := make([][]byte, posted)
	sizes := make([]int, posted)
	defer func() {
		for _, bp := range slots {
			if bp != nil {
				r.put(bp)
			}
		}
	}()
	for {
		for i, bp := range slots {
			if bp == nil {
				bp = r.get(large)
				slots[i] = bp
			}
			bufs[i] = (*bp)[:Headroom+r.size]
		}
		k, err := dev.Read(bufs, sizes, Headroom)
		if err != nil {
			r.once.Do(func() { r.err = err })
			return
		}
		for i := range k {
			n := sizes[i]
			meta := gso.ParseVirtio(bufs[i])
			bp := slots[i]
			if large && Headroom+n <= smallCap {
				// Keep the large buffer posted; the frame moves to a small one.
				sb := r.small.Get().(*[]byte)
				copy(*sb, bufs[i][:Headroom+n])
				bp = sb
			} else {
				slots[i] = nil
			}
			if r.enqueue(queued{bp: bp, n: n, meta: meta}) {
				continue
			}
			r.dropped.Add(1)
			if slots[i] == nil {
				slots[i] = bp // repost it
			} else {
				r.put(bp)
			}
		}
	}
}

// enqueue queues q unless the queue is full in frames or in pinned bytes.
func (r *Reader) enqueue(q queued) bool {
	c := int64(cap(*q.bp))
	if r.pinned.Add(c) > QueueBytes {
		r.pinned.Add(-c)
		return false
	}
	select {
	case r.queue <- q:
		r.frames.Add(1)
		return true
	default:
		r.pinned.Add(-c)
		return false
	}
}

// Batch holds frames taken from a Reader. Its buffers belong to the Reader's
// pools until Release; one Batch is reused for every read, so steady state
// allocates nothing.
type Batch struct {
	// Frames are the Ethernet frames.
	Frames [][]byte
	// Meta is each frame's offload metadata (zero unless the device has
	// offloads on).
	Meta []gso.Meta
	bufs []*[]byte
	r    *Reader
}

// WithHeader is frame i with its virtio_net_hdr in front: what an
// ethdev.Device's Write takes with offset gso.VirtioLen.
func (b *Batch) WithHeader(i int) []byte { return (*b.bufs[i])[:Headroom+len(b.Frames[i])] }

// Release returns the batch's buffers to the pool. The frames must not be used
// afterwards.
func (b *Batch) Release() {
	for i, bp := range b.bufs {
		b.r.put(bp)
		b.bufs[i] = nil
		b.Frames[i] = nil
	}
	b.bufs, b.Frames, b.Meta = b.bufs[:0], b.Frames[:0], b.Meta[:0]
}

// ReadBatch blocks until at least one frame is queued, then takes every queued
// frame up to MaxBatch into b (after releasing what b held). It returns
// ErrStopped when stop closes first and the Device's read error once the Reader
// has stopped and its queue is empty.
func (r *Reader) ReadBatch(stop <-chan struct{}, b *Batch) error {
	if b.r != nil {
		b.Release()
	}
	b.r = r
	var q queued
	select {
	case q = <-r.queue:
	case <-stop:
		return ErrStopped
	case <-r.done:
		select {
		case q = <-r.queue:
		default:
			return r.err
		}
	}
	b.add(q)
	for len(b.bufs) < MaxBatch {
		select {
		case q = <-r.queue:
			b.add(q)
		default:
			return nil
		}
	}
	return nil
}

func (b *Batch) add(q queued) {
	b.r.pinned.Add(-int64(cap(*q.bp)))
	b.bufs = append(b.bufs, q.bp)
	b.Frames = append(b.Frames, (*q.bp)[Headroom:Headroom+q.n])
	b.Meta = append(b.Meta, q.meta)
}

// Done is closed when the Reader has stopped because the Device failed or was
// closed; Err then says why.
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

// Stats are the frames queued for a consumer and those dropped on a full queue.
func (r *Reader) Stats() (queued, dropped uint64) { return r.frames.Load(), r.dropped.Load() }
