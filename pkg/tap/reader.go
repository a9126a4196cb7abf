package tap

import (
	"errors"
	"sync"
	"sync/atomic"
)

// MaxBatch is the most frames one ReadBatch returns: the wire protocol's limit of
// frames per Frames message.
const MaxBatch = 128

// ErrStopped is what ReadBatch returns when its stop channel closes first.
var ErrStopped = errors.New("tap: batch read stopped")

// Reader reads frames from a Device in its own goroutine into pooled buffers and
// queues them, so a consumer can take everything that is ready in one batch. It
// outlives the sessions that consume it: a VPN client keeps one Reader for the life
// of its TAP device and hands it from session to session across reconnects.
//
// When the queue is full (no session, or a session slower than the TAP) the
// newest frame is dropped and counted, as a switch port would; TCP inside the
// tunnel backs off on its own.
type Reader struct {
	dev   Device
	size  int
	pool  sync.Pool
	queue chan *[]byte
	done  chan struct{}
	err   error // set before done is closed

	dropped atomic.Uint64
	frames  atomic.Uint64
}

// NewReader starts reading dev. frameSize is the buffer size per frame (use the
// MTU plus FrameOverhead); queueLen bounds the frames waiting for a consumer.
func NewReader(dev Device, frameSize, queueLen int) *Reader {
	r := &Reader{
		dev:   dev,
		size:  frameSize,
		queue: make(chan *[]byte, queueLen),
		done:  make(chan struct{}),
	}
	r.pool.New = func() any {
		b := make([]byte, frameSize)
		return &b
	}
	go r.loop()
	return r
}

func (r *Reader) loop() {
	defer close(r.done)
	for {
		bp := r.pool.Get().(*[]byte)
		b := (*bp)[:r.size]
		n, err := r.dev.Read(b)
		if err != nil {
			r.pool.Put(bp)
			r.err = err
			return
		}
		*bp = b[:n]
		select {
		case r.queue <- bp:
			r.frames.Add(1)
		default:
			r.dropped.Add(1)
			r.pool.Put(bp)
		}
	}
}

// Batch holds frames taken from a Reader. Its buffers belong to the Reader's pool
// until Release; one Batch is reused for every read, so steady state allocates
// nothing.
type Batch struct {
	Frames [][]byte
	bufs   []*[]byte
	r      *Reader
}

// Release returns the batch's buffers to the pool. The frames must not be used
// afterwards.
func (b *Batch) Release() {
	for i, bp := range b.bufs {
		b.r.pool.Put(bp)
		b.bufs[i] = nil
		b.Frames[i] = nil
	}
	b.bufs, b.Frames = b.bufs[:0], b.Frames[:0]
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
	var bp *[]byte
	select {
	case bp = <-r.queue:
	case <-stop:
		return ErrStopped
	case <-r.done:
		select {
		case bp = <-r.queue:
		default:
			return r.err
		}
	}
	b.add(bp)
	for len(b.bufs) < MaxBatch {
		select {
		case bp = <-r.queue:
			b.add(bp)
		default:
			return nil
		}
	}
	return nil
}

func (b *Batch) add(bp *[]byte) {
	b.bufs = append(b.bufs, bp)
	b.Frames = append(b.Frames, *bp)
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
