package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Encode buffers are pooled, not kept per Conn: a member holds thousands of mostly
// idle sessions, and a batch buffer is ~200 KiB.
var encodePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 64<<10)
	return &b
}}

const (
	// flushAt bounds how much WriteFrames encodes before writing, when it is given
	// more than one batch of frames.
	flushAt = 256 << 10
	// maxPooled keeps buffers grown for jumbo batches out of the pool.
	maxPooled = 2 << 20
)

// WriteFrames sends frames in as few batches as the limits allow (128 frames, 1 MiB
// per batch), with one write to the TLS connection per ~256 KiB. Frames longer than
// MaxFrame are not sent; they are counted in Stats.TxOversize. frames may be reused
// as soon as WriteFrames returns. Nothing is allocated once the encode pool is warm.
func (c *Conn) WriteFrames(frames [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	bp := encodePool.Get().(*[]byte)
	b := (*bp)[:0]
	var sent, bytes, dropped int
	var err error
	for i := 0; i < len(frames) && err == nil; {
		start := len(b)
		b = append(b, 0, 0, 0, 0, 0) // header and frame count, filled below
		count, body := 0, 1
		for ; i < len(frames) && count < MaxBatchFrames; i++ {
			f := frames[i]
			if len(f) > c.cfg.MaxFrame {
				dropped++
				continue
			}
			if body+2+len(f) > MaxBatchBody {
				break
			}
			b = append(b, byte(len(f)>>8), byte(len(f)))
			b = append(b, f...)
			count++
			body += 2 + len(f)
			bytes += len(f)
		}
		if count == 0 {
			b = b[:start]
			continue
		}
		putHeader(b[start:], msgFrames, body)
		b[start+headerLen] = byte(count)
		sent += count
		if len(b) >= flushAt {
			err = c.write(b)
			b = b[:0]
		}
	}
	if err == nil && len(b) > 0 {
		err = c.write(b)
	}
	if cap(b) <= maxPooled {
		*bp = b[:0]
		encodePool.Put(bp)
	}
	if dropped > 0 {
		c.txOversize.Add(uint64(dropped))
	}
	if err != nil {
		return err
	}
	c.txFrames.Add(uint64(sent))
	c.txBytes.Add(uint64(bytes))
	return nil
}

// write sends b; the caller holds wmu. A failed write ends the session.
func (c *Conn) write(b []byte) error {
	now := time.Now()
	// As with reads, the deadline is moved only when a quarter of it has passed.
	if now.Sub(c.wDeadlineAt) >= c.cfg.WriteTimeout/4 {
		c.wDeadlineAt = now
		if err := c.nc.SetWriteDeadline(now.Add(c.cfg.WriteTimeout)); err != nil {
			return err
		}
	}
	c.lastWrite.Store(int64(now.Sub(c.epoch)))
	if _, err := c.nc.Write(b); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: peer accepted no data for %v", ErrPeerDead, c.cfg.WriteTimeout)
		}
		c.closeWithReason("", false)
		return err
	}
	return nil
}

// RunKeepalive sends a Keepalive whenever nothing was written for the keepalive
// interval, until ctx ends, the Conn closes or a write fails. Run it in its own
// goroutine on both sides of a session.
func (c *Conn) RunKeepalive(ctx context.Context) error {
	iv := c.cfg.KeepaliveInterval
	t := time.NewTimer(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return net.ErrClosed
		case <-t.C:
		}
		idle := time.Since(c.epoch) - time.Duration(c.lastWrite.Load())
		// A timer may fire a hair early; a keepalive a little early is harmless.
		if idle >= iv-iv/16 {
			c.wmu.Lock()
			err := c.write(c.keepalive[:])
			c.wmu.Unlock()
			if err != nil {
				return err
			}
			idle = 0
		}
		t.Reset(iv - idle)
	}
}

// WriteShutdown tells the client to reconnect now, to another member, giving reason
// (cut to MaxReason bytes). The server closes the Conn afterwards.
func (c *Conn) WriteShutdown(reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.write(controlMessage(msgShutdown, reason))
}

func controlMessage(typ byte, reason string) []byte {
	reason = truncate(reason, MaxReason)
	b := make([]byte, headerLen+len(reason))
	putHeader(b, typ, len(reason))
	copy(b[headerLen:], reason)
	return b
}

// Close ends the session, telling the peer with a Close message if that can be done
// without waiting. It is safe to call more than once and from any goroutine.
func (c *Conn) Close() error { return c.CloseWithReason("") }

// CloseWithReason is Close with a reason the peer's reader returns inside its
// ErrPeerClosed error, such as "hub default/vpn was deleted".
func (c *Conn) CloseWithReason(reason string) error {
	c.closeWithReason(reason, true)
	return nil
}

// closeWriteBudget bounds how long Close waits to send its Close message.
const closeWriteBudget = 250 * time.Millisecond

func (c *Conn) closeWithReason(reason string, notify bool) {
	c.closeOnce.Do(func() {
		// TryLock: a writer blocked on a peer that reads nothing must not block Close.
		if notify && c.wmu.TryLock() {
			_ = c.nc.SetWriteDeadline(time.Now().Add(closeWriteBudget))
			_, _ = c.nc.Write(controlMessage(msgClose, reason))
			c.wmu.Unlock()
		}
		_ = c.nc.Close()
		close(c.closed)
	})
}

// Done is closed when the session has ended.
func (c *Conn) Done() <-chan struct{} { return c.closed }
