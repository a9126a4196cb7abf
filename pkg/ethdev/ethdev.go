// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package ethdev is the one batched interface to an Ethernet device the kernel
// exchanges frames with: a client's or bridge session's TAP (pkg/tap) and a
// member's LAN bridge (pkg/bridge). It is shaped like wireguard-go's
// tun.Device, for the same reason: a batch per call amortises the poller
// wake-up, and a virtio_net_hdr beside each frame lets a device hand out and
// take 64 KiB super-frames (segmentation offload) instead of MTU-sized ones.
//
// Buffer layout, for Read and Write alike: frame i lives at bufs[i][offset:],
// and the gso.VirtioLen bytes before it, bufs[i][offset-gso.VirtioLen:offset],
// hold its offload metadata as a virtio_net_hdr (gso.ParseVirtio, PutVirtio).
// offset must be at least gso.VirtioLen; a device may use the headroom before
// that (none does today). Keeping the header in the buffer, right before the
// frame, is what lets a TAP read or write header and frame in one system call
// without copying either.
package ethdev

import (
	"errors"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// Offload says which offload frames a device hands out on Read and takes
// whole on Write.
type Offload struct {
	// VnetHdr: Read may return frames with non-zero metadata. Without it the
	// metadata Read returns is always zero (an ordinary, complete frame).
	VnetHdr bool
	// Csum: frames may carry a partial checksum (gso.NeedsCsum) in both
	// directions.
	Csum bool
	// TSO4, TSO6: TCP super-frames (gso.TypeTCPv4, TypeTCPv6) in both
	// directions. USO: UDP super-frames (gso.TypeUDPL4).
	TSO4, TSO6, USO bool
}

// Accepts reports whether a frame with metadata m can go to the device whole;
// if not, the device's Write completes or splits it (gso.Split) first.
func (o Offload) Accepts(m gso.Meta) bool {
	if m.IsZero() {
		return true
	}
	if !o.VnetHdr || m.Flags&gso.NeedsCsum != 0 && !o.Csum {
		return false
	}
	switch m.Type &^ gso.TypeECN {
	case gso.TypeNone:
		return true
	case gso.TypeTCPv4:
		return o.TSO4
	case gso.TypeTCPv6:
		return o.TSO6
	case gso.TypeUDPL4:
		return o.USO
	}
	return false
}

// Any reports whether the device moves any offload frame at all.
func (o Offload) Any() bool { return o.VnetHdr && (o.Csum || o.TSO4 || o.TSO6 || o.USO) }

// MaxSuperFrame is the longest frame a device with segmentation offload hands
// out: an IP packet's 16-bit length, behind an Ethernet header and room for
// one 802.1Q tag and a second (QinQ) tag.
const MaxSuperFrame = 65535 + 14 + 8

// FrameOverhead is what an Ethernet frame adds to the MTU without offload: a
// 14-byte header and two 802.1Q tags (the frame check sequence is not part of
// a frame a device hands out).
const FrameOverhead = 14 + 2*4

// MaxFrame is the buffer room (after offset) a device with this MTU and these
// offloads needs per frame.
func MaxFrame(mtu int, o Offload) int {
	if o.TSO4 || o.TSO6 || o.USO {
		return MaxSuperFrame
	}
	return mtu + FrameOverhead
}

// Device is a batched Ethernet device.
//
// Read and Write may run concurrently with each other (one goroutine each);
// two concurrent Reads, or two concurrent Writes, are not allowed unless the
// implementation says otherwise.
type Device interface {
	// Name is the kernel's interface name, such as "hf0".
	Name() string
	// MTU is the interface's current IP MTU, or 0 if it cannot be read.
	MTU() int
	// BatchSize is the most frames one Read returns and the batch Write
	// handles best; callers size their bufs to it.
	BatchSize() int
	// Read blocks until at least one frame arrived, then reads up to
	// len(bufs) frames: frame i into bufs[i][offset:offset+sizes[i]], its
	// metadata as a virtio_net_hdr at bufs[i][offset-gso.VirtioLen:offset]
	// (zeroed when Offload().VnetHdr is false). Each buffer needs
	// MaxFrame(MTU(), Offload()) bytes after offset; a frame longer than its
	// buffer is dropped (and counted where the device counts), never
	// returned cut short. len(sizes) must be at least len(bufs). After Close,
	// Read returns ErrClosed.
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write sends the frames bufs[i][offset:], each with its metadata at
	// bufs[i][offset-gso.VirtioLen:offset] (zero for an ordinary frame), and
	// returns how many it handled. A frame the device cannot take whole
	// (Offload().Accepts is false) is completed or split by the device
	// itself with gso.Split: callers never segment. A frame the kernel
	// refuses, or one Split cannot handle, is dropped (and counted); Write
	// returns an error only when the device is gone or closed. Write never
	// changes the frames (a split or a checksum is done in the device's own
	// scratch buffer), so one frame may go to several devices.
	Write(bufs [][]byte, offset int) (int, error)
	// Offload is what the device hands out and takes; it does not change
	// after the device is opened.
	Offload() Offload
	// Close ends the device; a blocked Read returns ErrClosed.
	Close() error
}

// ErrClosed is returned by Read and Write after Close.
var ErrClosed = errors.New("ethdev: device closed")

// ErrOffset is returned by Read and Write for an offset below gso.VirtioLen.
var ErrOffset = errors.New("ethdev: offset leaves no room for the virtio_net_hdr")

// Segmenter is what a device's Write uses for a frame it cannot take whole:
// gso.Split into a scratch buffer of the segmenter's own, with VirtioLen zero
// bytes before each piece, so a device that reads a virtio_net_hdr writes
// header and piece in one call. The buffer is allocated on first use: a
// device that is never handed an offload frame holds none.
type Segmenter struct{ buf []byte }

// Split calls emit with each piece the frame with metadata m stands for, as a
// device without offload must receive them, each as a zero virtio_net_hdr
// followed by the piece. emit's slice is valid only during the call. Split
// reports false, emitting nothing, for a frame gso.Split cannot handle.
func (s *Segmenter) Split(m gso.Meta, frame []byte, emit func(hdrAndFrame []byte)) bool {
	if s.buf == nil {
		s.buf = make([]byte, gso.VirtioLen+MaxSuperFrame)
	}
	scratch := s.buf[gso.VirtioLen:]
	return gso.Split(m, frame, scratch, func(p []byte) {
		if len(p) == 0 || &p[0] != &scratch[0] {
			// gso.Split passes a frame that needs nothing done as it is;
			// the copy gives it the zero header in front.
			p = scratch[:copy(scratch, p)]
		}
		emit(s.buf[:gso.VirtioLen+len(p)])
	})
}
