// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// Config is a session's configuration, the same on both sides: the server's
// LoginResult decides it (LoginResult.ConnConfig).
type Config struct {
	// KeepaliveInterval: RunKeepalive sends a Keepalive after this long without a
	// write. Zero means DefaultKeepaliveInterval.
	KeepaliveInterval time.Duration
	// DeadPeerTimeout: the reader fails with ErrPeerDead when nothing arrives for
	// this long. Zero means max(DefaultDeadPeerTimeout, 3*KeepaliveInterval).
	DeadPeerTimeout time.Duration
	// MaxFrame: longer frames are dropped and counted, on both sides. Zero means
	// DefaultMaxFrame.
	MaxFrame int
	// WriteTimeout: a write that cannot proceed for this long fails with
	// ErrPeerDead. Zero means max(DefaultWriteTimeout, DeadPeerTimeout).
	WriteTimeout time.Duration
	// GSO: both sides accepted CapGSO, so frames travel with their offload
	// metadata and super-frames of up to MaxSuperFrame bytes go whole.
	GSO bool
}

func (c Config) withDefaults() Config {
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.DeadPeerTimeout <= 0 {
		c.DeadPeerTimeout = max(DefaultDeadPeerTimeout, 3*c.KeepaliveInterval)
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	c.MaxFrame = min(c.MaxFrame, MaxFrameLimit)
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = max(DefaultWriteTimeout, c.DeadPeerTimeout)
	}
	return c
}

// Stats are a session's counters. Frames and bytes count what crosses the wire:
// a super-frame sent whole counts as one frame of its length, one split in
// software (for a session without GSO) as the segments sent. Oversize frames are
// those over MaxFrame (MaxSuperFrame for a super-frame, whose segment size must
// also fit MaxFrame), dropped by the receiver (Rx) or not sent (Tx).
type Stats struct {
	RxFrames, RxBytes, RxOversize uint64
	TxFrames, TxBytes, TxOversize uint64
	RxKeepalives                  uint64
	// RxSuper and TxSuper count super-frames received and sent whole.
	RxSuper, TxSuper uint64
	// TxSegmented counts frames with offload metadata that WriteFramesGSO
	// finished in software for a session without GSO: super-frames split into
	// segments and partial checksums completed.
	TxSegmented uint64
	// RxBadMeta and TxBadMeta count frames dropped for metadata that does not
	// fit the frame (offsets outside it, an unknown GSO type, a zero segment
	// size, a super-frame gso.Split cannot cut).
	RxBadMeta, TxBadMeta uint64
}

// Conn is a logged-in session: batches of frames and keepalives over the TLS
// stream. One goroutine reads (ReadFrames or ReadBatch); writes (WriteFrames,
// RunKeepalive, WriteShutdown, Close) may come from any goroutine and are
// serialised. An error from a read or a write ends the session: the Conn is closed
// by the time it is returned.
type Conn struct {
	nc  net.Conn
	cfg Config
	br  *bufio.Reader

	// Reader state, owned by the reading goroutine.
	dec         framing.Decoder
	src         connSource
	rDeadlineAt time.Time

	wmu         sync.Mutex
	w           writeState // guarded by wmu
	batcher     batcher    // nil: not a TLS connection over WrapTCP
	held        int        // bytes sent since the batcher's hold; guarded by wmu
	sends       int        // sends since beginWrite; guarded by wmu
	wErr        error      // a write deadline that could not be set; guarded by wmu
	wDeadlineAt time.Time
	keepalive   [headerLen]byte
	epoch       time.Time
	lastWrite   atomic.Int64 // time since epoch of the last write

	closeOnce sync.Once
	closed    chan struct{}

	rxFrames, rxBytes, rxOversize atomic.Uint64
	txFrames, txBytes, txOversize atomic.Uint64
	rxKeepalives                  atomic.Uint64
	rxSuper, txSuper, txSegmented atomic.Uint64
	rxBadMeta, txBadMeta          atomic.Uint64
}

// connSource is the Conn's read buffer as a framing.Source: reads that need the
// network arm the dead-peer deadline first and report it as ErrPeerDead.
type connSource struct{ c *Conn }

func (s connSource) Peek(n int) ([]byte, error) { return s.c.peek(n) }
func (s connSource) Discard(n int) (int, error) { return n, s.c.discard(n) }

// minReadBuffer is the smallest read buffer a Conn gets. The buffer is allocated
// for every session and held while it is idle, so it is sized for one frame, not
// for a batch: frames are handed out of it one at a time, and tls.Conn already
// keeps the whole current record (up to 16 KiB), so a small buffer costs extra
// in-memory Read calls into tls.Conn but no extra syscalls. BenchmarkReadBuffer
// measures 4 KiB against 16 and 64 KiB.
const minReadBuffer = 4 << 10

// readBufferSize is the read buffer for a session: it must hold a whole frame
// and its header so frames can be handed out in place — a super-frame for a
// GSO session, which is why only sessions that negotiated it pay for 64 KiB. A
// variable so the benchmark can compare sizes in one run.
var readBufferSize = func(cfg Config) int {
	if cfg.GSO {
		return max(minReadBuffer, MaxSuperFrame+framing.MaxFrameHeader)
	}
	return max(minReadBuffer, cfg.MaxFrame+2)
}

// batcher is WrapTCP's connection: it sends a batch's TLS records with one
// write instead of one each.
type batcher interface {
	hold()
	flush() error
}

// batcherOf finds WrapTCP's connection under nc's TLS, if it is there.
func batcherOf(nc net.Conn) batcher {
	if b, ok := nc.(batcher); ok {
		return b
	}
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		if b, ok := tc.NetConn().(batcher); ok {
			return b
		}
	}
	return nil
}

// NewConn starts a session on nc after a successful login (Login or ReadLogin +
// WriteResult), with the configuration of the LoginResult.
func NewConn(nc net.Conn, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	c := &Conn{
		nc:     nc,
		cfg:    cfg,
		br:     bufio.NewReaderSize(nc, readBufferSize(cfg)),
		epoch:  time.Now(),
		closed: make(chan struct{}),
	}
	c.src = connSource{c}
	c.batcher = batcherOf(nc)
	c.dec.Limits = framing.Limits{MaxFrame: cfg.MaxFrame}
	if cfg.GSO {
		c.dec.MaxSuper = MaxSuperFrame
	}
	c.w.emit = c.addSegment
	putHeader(c.keepalive[:], msgKeepalive, 0)
	return c
}

// Config is the session's configuration with defaults applied.
func (c *Conn) Config() Config { return c.cfg }

// NetConn is the underlying connection, for addresses and TLS state.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Stats returns the session's counters so far.
func (c *Conn) Stats() Stats {
	return Stats{
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(), RxOversize: c.rxOversize.Load(),
		TxFrames: c.txFrames.Load(), TxBytes: c.txBytes.Load(), TxOversize: c.txOversize.Load(),
		RxKeepalives: c.rxKeepalives.Load(),
		RxSuper:      c.rxSuper.Load(), TxSuper: c.txSuper.Load(), TxSegmented: c.txSegmented.Load(),
		RxBadMeta: c.rxBadMeta.Load(), TxBadMeta: c.txBadMeta.Load(),
	}
}

// ReadFrames blocks until a batch arrives and calls fn for each of its frames, in
// order, then returns how many it delivered. frame points into the read buffer and
// is valid only until fn returns: fn copies what it keeps. Nothing is allocated per
// frame or per batch. Keepalives are consumed here. A Shutdown from the server
// returns a *ShutdownError, a Close from the peer ErrPeerClosed, silence for the
// dead-peer timeout ErrPeerDead, and a malformed stream a *ProtocolError. On a GSO
// session a super-frame is handed to fn whole, without its metadata: callers that
// may get one use ReadFramesGSO.
func (c *Conn) ReadFrames(fn func(frame []byte)) (int, error) {
	return c.read(math.MaxInt, func(f []byte, _ gso.Meta) { fn(f) })
}

// ReadFramesGSO is ReadFrames with each frame's offload metadata: the zero Meta
// for an ordinary frame (and for every frame of a session without GSO). A frame
// with a GSO type is a super-frame of up to MaxSuperFrame bytes.
func (c *Conn) ReadFramesGSO(fn func(frame []byte, m gso.Meta)) (int, error) {
	return c.read(math.MaxInt, fn)
}

// ReadBatch is ReadFrames copying into caller-owned buffers, for callers that keep
// frames past the call (queues, other sessions' writers). It fills bufs[i][:sizes[i]]
// for i < n, up to min(len(bufs), len(sizes)) frames and never past the end of the
// batch once it has one frame. Each buffer must hold MaxFrame bytes (MaxSuperFrame
// on a GSO session).
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	want := min(len(bufs), len(sizes))
	need := c.cfg.MaxFrame
	if c.cfg.GSO {
		need = max(need, MaxSuperFrame)
	}
	for i := range want {
		if len(bufs[i]) < need {
			return 0, fmt.Errorf("ReadBatch: buffer %d holds %d bytes, less than the session's max frame of %d (MaxSuperFrame with GSO)", i, len(bufs[i]), need)
		}
	}
	i := 0
	return c.read(want, func(f []byte, _ gso.Meta) {
		sizes[i] = copy(bufs[i], f)
		i++
	})
}

// FrameSink takes the frames ReadFramesInto reads, into buffers of its own.
type FrameSink interface {
	// FrameBuffer returns a buffer of at least n bytes for the next frame, of
	// n bytes with metadata m, or nil to skip the frame (not counted as
	// received).
	FrameBuffer(n int, m gso.Meta) []byte
	// FrameDone says that the frame is in the buffer the last FrameBuffer
	// returned. A read that fails in between calls no FrameDone: the sink
	// drops the buffer.
	FrameDone()
}

// directRead is the frame length from which ReadFramesInto reads a frame's
// bytes past what the read buffer holds straight from the TLS connection into
// the sink's buffer: one copy of a super-frame's plaintext instead of two
// (TLS record into the read buffer, read buffer into the sink's).
const directRead = 8 << 10

// ReadFramesInto is ReadBatch for a caller that owns its buffers frame by
// frame (a member reading into pooled hub frames): it reads the rest of the
// current batch, or the next batch, each frame into the buffer s gives for
// it, and returns how many frames it delivered. Frames of directRead bytes or
// more are read from the TLS connection into that buffer without passing
// through the read buffer.
func (c *Conn) ReadFramesInto(s FrameSink) (int, error) {
	n, bytes := 0, 0
	defer func() { c.account(n, bytes) }()
	for {
		if c.dec.Left() == 0 {
			if n > 0 {
				return n, nil
			}
			if err := c.nextBatch(); err != nil {
				return n, c.fail(err)
			}
			continue
		}
		p, err := c.peek(c.dec.Window())
		if err != nil {
			return n, c.fail(err)
		}
		fi, err := c.dec.Next(p)
		if err != nil {
			if fe, ok := errors.AsType[*framing.Error](err); ok {
				err = protoErr("%s", fe.Msg)
			}
			return n, c.fail(err)
		}
		c.br.Discard(fi.Header)
		if fi.Verdict != framing.Deliver {
			if fi.Verdict == framing.Oversize {
				c.rxOversize.Add(1)
			} else {
				c.rxBadMeta.Add(1)
			}
			if err := c.discard(fi.Len); err != nil {
				return n, c.fail(err)
			}
			continue
		}
		b := s.FrameBuffer(fi.Len, fi.Meta)
		if b == nil {
			if err := c.discard(fi.Len); err != nil {
				return n, c.fail(err)
			}
			continue
		}
		if err := c.readFull(b[:fi.Len]); err != nil {
			return n, c.fail(err)
		}
		s.FrameDone()
		if fi.Meta.Segmented() {
			c.rxSuper.Add(1)
		}
		n++
		bytes += fi.Len
	}
}

// readFull fills b with the next bytes of the stream: out of the read buffer
// for a short frame, and for a long one what the buffer holds and the rest
// straight from the connection (the buffer is empty then, so bypassing it
// leaves it consistent).
func (c *Conn) readFull(b []byte) error {
	if len(b) < directRead || c.br.Buffered() >= len(b) {
		p, err := c.peek(len(b))
		if err != nil {
			return err
		}
		copy(b, p)
		c.br.Discard(len(b))
		return nil
	}
	k := 0
	if c.br.Buffered() > 0 {
		k, _ = c.br.Read(b) // only buffered bytes: no read from the connection
	}
	for k < len(b) {
		if err := c.armReadDeadline(); err != nil {
			return err
		}
		m, err := c.nc.Read(b[k:])
		k += m
		if err != nil && k < len(b) {
			return c.readErr(err)
		}
	}
	return nil
}

// read hands up to limit frames to fn: the rest of the current batch, or the next
// batch when none is left. fn does not escape, so the closures above stay on the stack.
func (c *Conn) read(limit int, fn func(frame []byte, m gso.Meta)) (int, error) {
	n, bytes := 0, 0
	defer func() { c.account(n, bytes) }()
	for n < limit {
		if c.dec.Left() == 0 {
			if n > 0 {
				return n, nil
			}
			if err := c.nextBatch(); err != nil {
				return n, c.fail(err)
			}
			continue
		}
		f, fi, err := c.dec.ReadFrame(c.src)
		if err != nil {
			if fe, ok := errors.AsType[*framing.Error](err); ok {
				err = protoErr("%s", fe.Msg)
			}
			return n, c.fail(err)
		}
		switch fi.Verdict {
		case framing.Deliver:
			if fi.Meta.Segmented() {
				c.rxSuper.Add(1)
			}
			fn(f, fi.Meta)
			n++
			bytes += len(f)
		case framing.Oversize:
			c.rxOversize.Add(1)
		default:
			c.rxBadMeta.Add(1)
		}
	}
	return n, nil
}

func (c *Conn) account(frames, bytes int) {
	if frames > 0 {
		c.rxFrames.Add(uint64(frames))
		c.rxBytes.Add(uint64(bytes))
	}
}

// nextBatch reads messages until the header of a Frames batch has been consumed.
func (c *Conn) nextBatch() error {
	for {
		h, err := c.peek(headerLen)
		if err != nil {
			return err
		}
		typ, n := parseHeader(h)
		c.br.Discard(headerLen)
		switch {
		case typ == msgFrames || typ == msgFramesGSO:
			format, limit := framing.Plain, MaxBatchBody
			if typ == msgFramesGSO {
				if !c.cfg.GSO {
					return protoErr("FramesGSO message on a session that did not negotiate GSO")
				}
				format, limit = framing.Meta, MaxGSOBatchBody
			}
			if n > limit {
				return protoErr("batch body of %d bytes is over the %d-byte limit", n, limit)
			}
			if n < 3 {
				return protoErr("batch body of %d bytes cannot hold a frame", n)
			}
			p, err := c.peek(1)
			if err != nil {
				return err
			}
			count := int(p[0])
			c.br.Discard(1)
			if err := c.dec.Begin(format, count, n-1); err != nil {
				return protoErr("%v", err)
			}
			return nil
		case n > maxControlBody:
			return protoErr("message type 0x%02x with a %d-byte body, over the %d-byte limit", typ, n, maxControlBody)
		case typ == msgKeepalive || typ&msgExtension != 0:
			if typ == msgKeepalive {
				c.rxKeepalives.Add(1)
			}
			if err := c.discard(n); err != nil {
				return err
			}
		case typ == msgShutdown:
			reason, err := c.readText(n)
			if err != nil {
				return err
			}
			return &ShutdownError{Reason: reason}
		case typ == msgClose:
			reason, err := c.readText(n)
			if err != nil {
				return err
			}
			if reason == "" {
				return ErrPeerClosed
			}
			return fmt.Errorf("%w: %s", ErrPeerClosed, reason)
		default:
			return protoErr("unexpected message type 0x%02x in a session", typ)
		}
	}
}

// peek returns the next n buffered bytes, reading with the dead-peer deadline when
// the buffer runs short.
func (c *Conn) peek(n int) ([]byte, error) {
	if c.br.Buffered() < n {
		if err := c.armReadDeadline(); err != nil {
			return nil, err
		}
	}
	p, err := c.br.Peek(n)
	return p, c.readErr(err)
}

func (c *Conn) discard(n int) error {
	if c.br.Buffered() < n {
		if err := c.armReadDeadline(); err != nil {
			return err
		}
	}
	_, err := c.br.Discard(n)
	return c.readErr(err)
}

func (c *Conn) readText(n int) (string, error) {
	p, err := c.peek(n)
	if err != nil {
		return "", err
	}
	s := strings.ToValidUTF8(string(p), "\uFFFD")
	c.br.Discard(n)
	return s, nil
}

// armReadDeadline moves the read deadline to now+DeadPeerTimeout. It only does so
// when the deadline is more than an eighth of the timeout old, so a busy session
// pays for it rarely; a silent peer is then detected within 7/8..8/8 of the timeout.
func (c *Conn) armReadDeadline() error {
	now := time.Now()
	if now.Sub(c.rDeadlineAt) < c.cfg.DeadPeerTimeout/8 {
		return nil
	}
	c.rDeadlineAt = now
	return c.nc.SetReadDeadline(now.Add(c.cfg.DeadPeerTimeout))
}

func (c *Conn) readErr(err error) error {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: nothing received for %v", ErrPeerDead, c.cfg.DeadPeerTimeout)
	}
	return err
}

// fail ends the session after a read error, telling the peer why if it broke the
// protocol.
func (c *Conn) fail(err error) error {
	reason := ""
	if errors.Is(err, ErrProtocol) {
		reason = err.Error()
	}
	c.closeWithReason(reason, errors.Is(err, ErrProtocol))
	return err
}
