// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package framing is the one codec for the length-prefixed messages and frame
// batches that client sessions (pkg/protocol) and member links (pkg/mesh) put
// on their TLS streams: the 4-byte message header, the batch encoder and the
// batch decoder, in a stream form (frames handed out of a bufio.Reader in
// place) and a slice form (frames handed out of a whole body in memory). Both
// forms parse per-frame headers with the same code, so the two wires cannot
// drift apart.
//
// A batch body is
//
//	[prefix] count u8 (1..128) then count × (frame header, frame bytes)
//
// where the prefix belongs to the caller (mesh puts a hub id there) and the
// frame header depends on the batch format:
//
//	Plain  length u16
//	Meta   length u24, flags u8,
//	       [csumStart u16, csumOffset u16]      if flags bit 0 (NEEDS_CSUM)
//	       [gso type u8, hdrLen u16, size u16]  if flags bit 1 (GSO)
//	       flags bit 2 is DATA_VALID (no field); other bits are a format error.
//
// The Meta format carries a frame's gso.Meta, so a 64 KiB super-frame crosses
// the wire whole; an ordinary frame costs 2 bytes more than in Plain.
package framing

import (
	"errors"
	"fmt"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// HeaderLen is the message header: type (1 byte) and body length (uint24).
const HeaderLen = 4

// MaxBody is the largest body the uint24 length can state.
const MaxBody = 1<<24 - 1

// PutHeader writes a message header into b[:HeaderLen].
func PutHeader(b []byte, typ byte, n int) {
	_ = b[HeaderLen-1]
	b[0] = typ
	b[1], b[2], b[3] = byte(n>>16), byte(n>>8), byte(n)
}

// ParseHeader reads a message header from b[:HeaderLen].
func ParseHeader(b []byte) (typ byte, n int) {
	_ = b[HeaderLen-1]
	return b[0], int(b[1])<<16 | int(b[2])<<8 | int(b[3])
}

// AppendHeader appends a message header.
func AppendHeader(b []byte, typ byte, n int) []byte {
	return append(b, typ, byte(n>>16), byte(n>>8), byte(n))
}

// Format is a batch's per-frame header layout.
type Format uint8

const (
	// Plain frames have a u16 length and no metadata.
	Plain Format = iota
	// Meta frames have a u24 length and their gso.Meta.
	Meta
)

const (
	// MaxBatchFrames is the most frames one batch carries.
	MaxBatchFrames = 128
	// MaxPlainFrame is the longest frame a Plain batch can carry.
	MaxPlainFrame = 1<<16 - 1
	// MaxSuperFrame is the longest frame this codec carries in a Meta batch
	// (gso.MaxSuperFrame); it fits one pooled hub frame.
	MaxSuperFrame = gso.MaxSuperFrame
	// MaxMetaBatchBody bounds a Meta batch body: 63 super-frames, or 128
	// frames of up to 32 KiB. Writers cut batches much earlier (a few hundred
	// KiB) so their encode buffers stay poolable; the limit only stops a peer
	// from making the receiver buffer without bound.
	MaxMetaBatchBody = 4 << 20
	// MaxFrameHeader is the longest per-frame header (Meta, both fields).
	MaxFrameHeader = 3 + 1 + 4 + 5
)

// Wire flag bits of a Meta frame header.
const (
	wireCsum      = 1 << 0
	wireGSO       = 1 << 1
	wireDataValid = 1 << 2
	wireKnown     = wireCsum | wireGSO | wireDataValid
)

func (f Format) minHeader() int {
	if f == Meta {
		return 4
	}
	return 2
}

// FrameHeaderLen is the per-frame header an encoder writes for m.
func (f Format) FrameHeaderLen(m gso.Meta) int {
	if f != Meta {
		return 2
	}
	n := 4
	if m.Flags&gso.NeedsCsum != 0 {
		n += 4
	}
	if m.Type != gso.TypeNone {
		n += 5
	}
	return n
}

// MaxFrameLen is the longest frame format f can carry (a receiver may take
// less: Limits).
func (f Format) MaxFrameLen() int {
	if f == Meta {
		return MaxSuperFrame
	}
	return MaxPlainFrame
}

// Error is a malformed batch. The stream it came from cannot be trusted past it.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// ErrFormat is wrapped by every *Error.
var ErrFormat = errors.New("malformed frame batch")

func (e *Error) Unwrap() error { return ErrFormat }

func formatErr(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// ValidMeta reports whether m describes a frame of n bytes this codec (and
// gso.Split) can act on: checksum offsets inside the frame, a known GSO type
// with a segment size and its checksum request. The zero Meta is valid.
func ValidMeta(m gso.Meta, n int) bool {
	if m.Flags&^(gso.NeedsCsum|gso.DataValid) != 0 {
		return false
	}
	if m.Flags&gso.NeedsCsum != 0 {
		// The checksum field is 2 bytes somewhere behind the Ethernet header.
		if m.CsumStart < 14 || int(m.CsumStart)+int(m.CsumOffset)+2 > n {
			return false
		}
	} else if m.CsumStart != 0 || m.CsumOffset != 0 {
		return false
	}
	if m.Type == gso.TypeNone {
		return m.HdrLen == 0 && m.Size == 0
	}
	switch m.Type &^ gso.TypeECN {
	case gso.TypeTCPv4, gso.TypeTCPv6:
	case gso.TypeUDPL4:
		if m.Type&gso.TypeECN != 0 {
			return false
		}
	default:
		return false
	}
	// Segmentation puts the checksum into every segment, so the sender must
	// have asked for it; the segment size must be able to move the payload.
	return m.Flags&gso.NeedsCsum != 0 && m.Size > 0 && int(m.HdrLen) <= n
}

// Canonical is m as it survives the Meta format: the virtio header's hdrLen
// and size are carried only with a GSO type, and the checksum offsets only
// with NEEDS_CSUM. Encoders send Canonical(m).
func Canonical(m gso.Meta) gso.Meta {
	if m.Flags&gso.NeedsCsum == 0 {
		m.CsumStart, m.CsumOffset = 0, 0
	}
	if m.Type == gso.TypeNone {
		m.HdrLen, m.Size = 0, 0
	}
	return m
}
