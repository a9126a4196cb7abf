// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
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

// scratchPool holds the buffers WriteFramesGSO segments into for a session
// without GSO. Pooled rather than kept per Conn: a member may hold thousands of
// old clients, and a super-frame needs a 64 KiB scratch only while it is cut up.
var scratchPool = sync.Pool{New: func() any {
	b := make([]byte, MaxSuperFrame)
	return &b
}}

// gsoBatchBody is where a writer ends a FramesGSO batch (the receiver accepts up
// to MaxGSOBatchBody): with flushAt it keeps a pooled encode buffer under
// maxPooled however large the frames.
const gsoBatchBody = 256 << 10

// writeState is one WriteFrames(GSO) call's encoder, kept in the Conn so that
// addSegment, bound once as w.emit, reaches it without a closure per call.
type writeState struct {
	b        []byte
	enc      framing.Encoder
	typ      byte
	format   framing.Format
	limit    int
	maxFrame int
	sent     int
	bytes    int
	err      error
	emit     func([]byte)
}

// WriteFrames sends frames in as few batches as the limits allow (128 frames, 1 MiB
// per batch), with one write to the TLS connection per ~256 KiB. Frames longer than
// MaxFrame are not sent; they are counted in Stats.TxOversize. frames may be reused
// as soon as WriteFrames returns. Nothing is allocated once the encode pool is warm.
func (c *Conn) WriteFrames(frames [][]byte) error { return c.WriteFramesGSO(frames, nil) }

// WriteFramesGSO is WriteFrames for frames with offload metadata (metas[i] for
// frames[i]; nil metas means every frame is ordinary). On a GSO session frames
// travel with their metadata and a super-frame goes whole, as one frame. On a
// session without GSO a super-frame is split into MTU segments and a partial
// checksum is completed, in software, in a pooled scratch buffer: frames[i] is
// never written (hub frames are shared between ports). Frames whose metadata
// does not fit them are dropped and counted in Stats.TxBadMeta.
func (c *Conn) WriteFramesGSO(frames [][]byte, metas []gso.Meta) error {
	return c.writeFrames(frames, metas, nil)
}

// directWrite is the frame length from which WriteFramesRoom sends a frame
// from its own buffer, behind a header written into its room, instead of
// copying it into the encode buffer: one 64 KiB copy less per super-frame,
// for a TLS record that ends with the frame (a few bytes of overhead).
const directWrite = 8 << 10

// DirectWrite is the frame length from which WriteFramesRoom uses a room.
const DirectWrite = directWrite

// directHeader is the most a frame sent from its own buffer needs in front of
// it: the message header, the count and the longest per-frame header.
const directHeader = headerLen + 1 + framing.MaxFrameHeader

// WriteFramesRoom is WriteFramesGSO for a caller that owns the bytes in front
// of its frames: rooms[i], when not nil, is frames[i] extended to the front
// (frames[i] is its tail) and the bytes before frames[i] may be overwritten. A
// frame of directWrite bytes or more with DirectHeader bytes of room goes out
// from its own buffer as a batch of one, its header in the room; the others
// are copied into batches as by WriteFramesGSO. The frames' own bytes are
// never written.
func (c *Conn) WriteFramesRoom(frames [][]byte, metas []gso.Meta, rooms [][]byte) error {
	return c.writeFrames(frames, metas, rooms)
}

// DirectHeader is the room WriteFramesRoom needs in front of a frame.
const DirectHeader = directHeader

func (c *Conn) writeFrames(frames [][]byte, metas []gso.Meta, rooms [][]byte) error {
	if metas != nil && len(metas) != len(frames) {
		return fmt.Errorf("WriteFramesGSO: %d metadata entries for %d frames", len(metas), len(frames))
	}
	if rooms != nil && len(rooms) != len(frames) {
		return fmt.Errorf("WriteFramesRoom: %d rooms for %d frames", len(rooms), len(frames))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w := &c.w
	w.typ, w.format, w.limit, w.maxFrame = msgFrames, framing.Plain, MaxBatchBody, c.cfg.MaxFrame
	if c.cfg.GSO && hasMeta(metas) {
		w.typ, w.format, w.limit = msgFramesGSO, framing.Meta, gsoBatchBody
	}
	bp := encodePool.Get().(*[]byte)
	w.b = w.enc.Begin((*bp)[:0], w.typ, w.format, nil, w.limit)
	w.sent, w.bytes, w.err = 0, 0, nil
	c.beginWrite()
	var scratch *[]byte
	var oversize, badMeta, super, segmented uint64
	for i := 0; i < len(frames) && w.err == nil; i++ {
		f := frames[i]
		var m gso.Meta
		if metas != nil {
			m = framing.Canonical(metas[i])
		}
		switch {
		case m.IsZero() || (m.Flags == gso.DataValid && m.Type == gso.TypeNone):
			if len(f) > w.maxFrame {
				oversize++
				continue
			}
			if rooms != nil && len(f) >= directWrite && len(rooms[i]) >= len(f)+directHeader {
				c.addDirect(rooms[i], f, m)
				continue
			}
			c.addFrame(f, m)
		case !framing.ValidMeta(m, len(f)):
			badMeta++
		case w.format == framing.Meta:
			if m.Segmented() && (len(f) > MaxSuperFrame || int(m.Size) > w.maxFrame) ||
				!m.Segmented() && len(f) > w.maxFrame {
				oversize++
				continue
			}
			if m.Segmented() {
				super++
			}
			if rooms != nil && len(f) >= directWrite && len(rooms[i]) >= len(f)+directHeader {
				c.addDirect(rooms[i], f, m)
				continue
			}
			c.addFrame(f, m)
		default:
			if scratch == nil {
				scratch = scratchPool.Get().(*[]byte)
			}
			if !gso.Split(m, f, *scratch, w.emit) {
				badMeta++
				continue
			}
			segmented++
		}
	}
	b := w.enc.End(w.b)
	err := w.err
	if err == nil && len(b) > 0 {
		err = c.send(b)
	}
	if err == nil {
		err = c.endWrite()
	} else {
		c.abortWrite()
	}
	if cap(b) <= maxPooled {
		*bp = b[:0]
		encodePool.Put(bp)
	}
	w.b = nil
	if scratch != nil {
		scratchPool.Put(scratch)
	}
	if oversize > 0 {
		c.txOversize.Add(oversize)
	}
	if badMeta > 0 {
		c.txBadMeta.Add(badMeta)
	}
	if segmented > 0 {
		c.txSegmented.Add(segmented)
	}
	if err != nil {
		return err
	}
	// Segments over MaxFrame were counted as oversize by addSegment.
	c.txFrames.Add(uint64(w.sent))
	c.txBytes.Add(uint64(w.bytes))
	if super > 0 {
		c.txSuper.Add(super)
	}
	return nil
}

func hasMeta(metas []gso.Meta) bool {
	for _, m := range metas {
		if !m.IsZero() {
			return true
		}
	}
	return false
}

// addFrame appends f to the open batch, ending it (and writing the buffer once
// it holds flushAt bytes) when f does not fit. The caller holds wmu.
func (c *Conn) addFrame(f []byte, m gso.Meta) {
	w := &c.w
	if w.err != nil {
		return
	}
	if !w.enc.Fits(len(f), m) {
		w.b = w.enc.End(w.b)
		if len(w.b) >= flushAt {
			if w.err = c.send(w.b); w.err != nil {
				return
			}
			w.b = w.b[:0]
		}
		w.b = w.enc.Begin(w.b, w.typ, w.format, nil, w.limit)
	}
	w.b = w.enc.Add(w.b, f, m)
	w.sent++
	w.bytes += len(f)
}

// addDirect sends f from its own buffer as a batch of one, its header written
// into room in front of it, after the batch encoded so far. The caller holds
// wmu and checked that room has directHeader bytes before f.
func (c *Conn) addDirect(room, f []byte, m gso.Meta) {
	w := &c.w
	if w.err != nil {
		return
	}
	if w.enc.Count() > 0 {
		w.b = w.enc.End(w.b)
		if w.err = c.send(w.b); w.err != nil {
			return
		}
		w.b = w.enc.Begin(w.b[:0], w.typ, w.format, nil, w.limit)
	}
	fh := w.format.FrameHeaderLen(m)
	start := len(room) - len(f) - headerLen - 1 - fh
	h := framing.AppendHeader(room[start:start], w.typ, 1+fh+len(f))
	h = append(h, 1)
	h = w.format.AppendFrameHeader(h, len(f), m)
	_ = h // written in place: room[start:] is now header and frame
	if w.err = c.send(room[start:]); w.err != nil {
		return
	}
	w.sent++
	w.bytes += len(f)
}

// addSegment takes one segment (or checksum-completed frame) from gso.Split; the
// slice is Split's scratch, so it is copied into the batch at once.
func (c *Conn) addSegment(seg []byte) {
	if len(seg) > c.w.maxFrame {
		c.txOversize.Add(1)
		return
	}
	c.addFrame(seg, gso.Meta{})
}

// write sends b on its own (a keepalive, a control message); the caller holds
// wmu. A failed write ends the session.
func (c *Conn) write(b []byte) error {
	c.beginWrite()
	if err := c.send(b); err != nil {
		c.abortWrite()
		return err
	}
	return c.endWrite()
}

// beginWrite starts a write of one or more sends; the caller holds wmu.
// Over WrapTCP the TLS records of the sends are held back and leave in one
// write(2) per flushAt bytes (endWrite sends the rest).
func (c *Conn) beginWrite() {
	now := time.Now()
	// As with reads, the deadline is moved only when a quarter of it has passed.
	if now.Sub(c.wDeadlineAt) >= c.cfg.WriteTimeout/4 {
		c.wDeadlineAt = now
		if err := c.nc.SetWriteDeadline(now.Add(c.cfg.WriteTimeout)); err != nil {
			c.wErr = err
		}
	}
	c.lastWrite.Store(int64(now.Sub(c.epoch)))
	c.held, c.sends = 0, 0
}

// recordPayload is the most plaintext one TLS record carries.
const recordPayload = 16 << 10

// send passes b to TLS; the caller holds wmu, between beginWrite and
// endWrite. b may be reused when send returns.
func (c *Conn) send(b []byte) error {
	if c.wErr != nil {
		return c.writeFailed(c.wErr)
	}
	c.sends++
	// One record on its own is written through; anything more is held.
	if c.batcher != nil && (c.sends > 1 || len(b) > recordPayload) {
		// Records gathered so far leave first when b would take the held
		// bytes past flushAt, so the held buffer stays near its pooled size.
		if c.held > 0 && c.held+len(b) > flushAt {
			if err := c.batcher.flush(); err != nil {
				return c.writeFailed(err)
			}
			c.held = 0
		}
		if c.held == 0 {
			c.batcher.hold()
		}
		c.held += len(b)
	}
	if _, err := c.nc.Write(b); err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// endWrite sends what beginWrite's sends left held.
func (c *Conn) endWrite() error {
	if c.batcher != nil && c.held > 0 {
		c.held = 0
		if err := c.batcher.flush(); err != nil {
			return c.writeFailed(err)
		}
	}
	return nil
}

// abortWrite drops what a failed write held (the session is closed).
func (c *Conn) abortWrite() {
	if c.batcher != nil && c.held > 0 {
		c.held = 0
		_ = c.batcher.flush()
	}
}

func (c *Conn) writeFailed(err error) error {
	c.wErr = nil
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: peer accepted no data for %v", ErrPeerDead, c.cfg.WriteTimeout)
	}
	c.closeWithReason("", false)
	return err
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

// WriteHeld writes b to nc, a TLS connection (or a raw one) over WrapTCP,
// with all the TLS records b makes in one write(2) instead of one each: for
// code that writes a session's bytes without a Conn, such as a relay's
// splice. Over any other connection it is nc.Write.
func WriteHeld(nc net.Conn, b []byte) (int, error) {
	bt := batcherOf(nc)
	if bt == nil || len(b) <= recordPayload {
		return nc.Write(b)
	}
	bt.hold()
	n, err := nc.Write(b)
	if ferr := bt.flush(); err == nil {
		err = ferr
	}
	return n, err
}
