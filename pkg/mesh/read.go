// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/hub"
)

// read is the link's reader loop. A Frames body is walked with the framing
// stream decoder; each frame is read into a pooled hub frame with its
// metadata (the hub keeps frames in queues past this call), a long one
// straight from TLS (readFrame), and handed to the hub's peer port a batch at
// a time.
func (l *link) read() error {
	br := bufio.NewReaderSize(l.conn, 64<<10)
	dead := l.m.opt.DeadTimeout
	var armedAt time.Time
	batch := make([]*hub.Frame, 0, maxBatch)
	var hdr [headerLen]byte
	// Hub ports check the length of ordinary frames against the hub's own
	// limit; the decoder stops only what no sender may produce.
	dec := framing.Decoder{Limits: framing.Limits{MaxFrame: framing.MaxPlainFrame, MaxSuper: framing.MaxSuperFrame}}
	for {
		// Re-arming the deadline only every eighth of the timeout keeps the
		// cost off the per-message path; a silent peer is caught within
		// 7/8..8/8 of the timeout.
		if now := time.Now(); now.Sub(armedAt) >= dead/8 {
			armedAt = now
			if err := l.conn.SetReadDeadline(now.Add(dead)); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return l.readErr(err)
		}
		typ, n := parseHeader(hdr[:])
		format, limit := framing.Plain, maxBody
		switch typ {
		case msgUDPIn, msgUDPOut:
			if n > maxUDPBody {
				return fmt.Errorf("peer %s sent a datagram message of %d bytes", l.peer, n)
			}
			// Read in place from the bufio buffer when it holds the body
			// (64 KiB: it always does, the body is at most ~590 KiB only for
			// jumbo datagrams), else into a buffer of its own.
			var body []byte
			if n <= br.Size() {
				p, err := br.Peek(n)
				if err != nil {
					return l.readErr(err)
				}
				body = p
			} else {
				body = make([]byte, n)
				if _, err := io.ReadFull(br, body); err != nil {
					return l.readErr(err)
				}
			}
			if err := l.readUDP(typ, body); err != nil {
				return err
			}
			if n <= br.Size() {
				br.Discard(n)
			}
			continue
		case msgFrames:
		case msgFramesGSO:
			if l.version < 2 {
				return fmt.Errorf("peer %s sent FramesGSO on a version %d link", l.peer, l.version)
			}
			format, limit = framing.Meta, maxGSOBody
		default:
			if n > maxControl {
				return fmt.Errorf("peer %s sent message 0x%02x of %d bytes, over the %d-byte limit", l.peer, typ, n, maxControl)
			}
			body := make([]byte, n) // control plane: rare
			if _, err := io.ReadFull(br, body); err != nil {
				return l.readErr(err)
			}
			if err := l.control(typ, body); err != nil {
				return err
			}
			continue
		}
		if n < 5+2 || n > limit {
			return fmt.Errorf("peer %s sent a Frames message of %d bytes", l.peer, n)
		}
		var pre [5]byte // hub id, count
		if _, err := io.ReadFull(br, pre[:]); err != nil {
			return l.readErr(err)
		}
		id := binary.BigEndian.Uint32(pre[:])
		pp := (*l.byID.Load())[id] // nil: a hub detached meanwhile; drop its frames
		if err := dec.Begin(format, int(pre[4]), n-5); err != nil {
			return fmt.Errorf("peer %s: %w", l.peer, err)
		}
		for dec.Left() > 0 {
			p, err := br.Peek(dec.Window())
			if err != nil {
				releaseAll(batch)
				return l.readErr(err)
			}
			fi, err := dec.Next(p)
			if err == nil && fi.Verdict != framing.Deliver {
				// Pumps send only what the decoder accepts, so this is a
				// broken peer, not a frame to drop quietly.
				err = fmt.Errorf("a %d-byte frame with metadata %+v its sender must not send", fi.Len, fi.Meta)
			}
			if err != nil {
				releaseAll(batch)
				return fmt.Errorf("peer %s: %w", l.peer, err)
			}
			br.Discard(fi.Header)
			if pp == nil {
				if _, err := br.Discard(fi.Len); err != nil {
					return l.readErr(err)
				}
				continue
			}
			f := hub.NewFrameSize(fi.Len)
			f.SetLen(fi.Len)
			f.Meta = fi.Meta
			batch = append(batch, f)
			if err := l.readFrame(br, f.B); err != nil {
				releaseAll(batch)
				return l.readErr(err)
			}
		}
		if pp != nil {
			pp.port.Forward(batch) // takes the references
			clear(batch)
			batch = batch[:0]
		}
	}
}

// directRead is the frame length from which readFrame reads what the bufio
// buffer does not hold straight from the TLS connection into the hub frame:
// a super-frame's bytes are copied once, out of TLS.
const directRead = 8 << 10

// readFrame fills b (a hub frame) with the next bytes of the link.
func (l *link) readFrame(br *bufio.Reader, b []byte) error {
	if len(b) < directRead || br.Buffered() >= len(b) {
		_, err := io.ReadFull(br, b)
		return err
	}
	k := 0
	if br.Buffered() > 0 {
		k, _ = br.Read(b) // only what is buffered: no read from the connection
	}
	// The bufio buffer is empty now, so reading around it keeps it consistent.
	_, err := io.ReadFull(l.conn, b[k:])
	return err
}

func (l *link) control(typ byte, body []byte) error {
	switch typ {
	case msgKeepalive:
	case msgAttach:
		if len(body) < 5 || len(body) > 4+maxHubName {
			return fmt.Errorf("peer %s sent a malformed Attach", l.peer)
		}
		l.remoteAttach(binary.BigEndian.Uint32(body), string(body[4:]))
	case msgDetach:
		if len(body) != 4 {
			return fmt.Errorf("peer %s sent a malformed Detach", l.peer)
		}
		l.remoteDetach(binary.BigEndian.Uint32(body))
	default:
		return fmt.Errorf("peer %s sent unknown message type 0x%02x", l.peer, typ)
	}
	return nil
}

func (l *link) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("peer %s dead: nothing received for %v", l.peer, l.m.opt.DeadTimeout)
	}
	return err
}

func releaseAll(frames []*hub.Frame) {
	for _, f := range frames {
		f.Release()
	}
}
