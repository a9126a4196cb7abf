// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package framing

import (
	"encoding/binary"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// Encoder appends batch messages to a caller's buffer: Begin, then Add while
// Fits, then End. It holds offsets, not the buffer, so the caller's append
// may move it; the zero Encoder is ready after Begin.
type Encoder struct {
	format Format
	start  int // message header offset in the buffer
	prefix int // caller's prefix length; the count byte follows it
	count  int
	body   int
	limit  int
}

// Begin appends the header of a message of type typ in format f, the caller's
// prefix and a count to be filled by End. limit bounds the body (the receiver's
// limit, or less to keep buffers small); Fits refuses a frame beyond it unless
// the batch is empty, so one frame always goes.
func (e *Encoder) Begin(b []byte, typ byte, f Format, prefix []byte, limit int) []byte {
	e.format, e.start, e.prefix, e.count, e.limit = f, len(b), len(prefix), 0, limit
	b = append(b, typ, 0, 0, 0)
	b = append(b, prefix...)
	b = append(b, 0)
	e.body = len(prefix) + 1
	return b
}

// Count is the number of frames added since Begin.
func (e *Encoder) Count() int { return e.count }

// Fits reports whether a frame of n bytes with metadata m may join the batch:
// the batch has room for another frame and the body limit is not passed (an
// empty batch takes any frame its format can carry).
func (e *Encoder) Fits(n int, m gso.Meta) bool {
	if e.count >= MaxBatchFrames || n > e.format.MaxFrameLen() {
		return false
	}
	return e.count == 0 || e.body+e.format.FrameHeaderLen(m)+n <= e.limit
}

// Add appends one frame; the caller checked Fits. In a Plain batch m is
// ignored; in a Meta batch Canonical(m) is sent.
func (e *Encoder) Add(b, frame []byte, m gso.Meta) []byte {
	before := len(b)
	b = e.format.AppendFrameHeader(b, len(frame), m)
	b = append(b, frame...)
	e.count++
	e.body += len(b) - before
	return b
}

// AppendFrameHeader appends the per-frame header of a frame of n bytes with
// metadata m (FrameHeaderLen(m) bytes). A writer that sends a frame from its
// own buffer puts this, behind a message header and a count of 1, in front
// of it.
func (f Format) AppendFrameHeader(b []byte, n int, m gso.Meta) []byte {
	if f != Meta {
		return append(b, byte(n>>8), byte(n))
	}
	var flags byte
	if m.Flags&gso.NeedsCsum != 0 {
		flags |= wireCsum
	}
	if m.Type != gso.TypeNone {
		flags |= wireGSO
	}
	if m.Flags&gso.DataValid != 0 {
		flags |= wireDataValid
	}
	b = append(b, byte(n>>16), byte(n>>8), byte(n), flags)
	if flags&wireCsum != 0 {
		b = binary.BigEndian.AppendUint16(b, m.CsumStart)
		b = binary.BigEndian.AppendUint16(b, m.CsumOffset)
	}
	if flags&wireGSO != 0 {
		b = append(b, m.Type)
		b = binary.BigEndian.AppendUint16(b, m.HdrLen)
		b = binary.BigEndian.AppendUint16(b, m.Size)
	}
	return b
}

// End fills in the message header and count. A batch with no frames is taken
// back out of b, so End never emits an empty batch (a receiver refuses one).
func (e *Encoder) End(b []byte) []byte {
	if e.count == 0 {
		return b[:e.start]
	}
	PutHeader(b[e.start:], b[e.start], e.body)
	b[e.start+HeaderLen+e.prefix] = byte(e.count)
	return b
}
