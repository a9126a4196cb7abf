// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"encoding/binary"
	"sync"

	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// MaxBatch is the most datagrams a Packer hands to one Flush: one
// sendmmsg(2) call.
const MaxBatch = 64

// bufPool holds datagram buffers. Pooled, not kept per session: a member
// holds thousands of mostly idle sessions and a batch is 64 × 9 KiB.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, MaxDatagram)
	return &b
}}

// GetBuf is a pooled buffer of MaxDatagram bytes, for receivers.
func GetBuf() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuf returns a buffer GetBuf gave out.
func PutBuf(b *[]byte) {
	*b = (*b)[:cap(*b)]
	bufPool.Put(b)
}

// PackStats count what a Packer did.
type PackStats struct {
	Datagrams, Frames, Bytes uint64
	// Resegmented counts TCP frames and super-frames cut to the path's
	// datagram size (gso.Split with a smaller segment size).
	Resegmented uint64
	// Completed counts frames whose partial checksum was finished in
	// software for a peer without offload.
	Completed uint64
	// TooBig counts frames left to the TLS path: too long for a datagram and
	// not TCP (which could be cut) — an MTU-sized UDP or ICMP packet on a
	// path whose MTU the tunnel's does not fit in.
	TooBig uint64
	// BadMeta counts frames dropped for metadata that does not fit them.
	BadMeta uint64
}

// Packer puts a session's outgoing frames into sealed Data datagrams of at
// most the path's size, several small frames to a datagram, and hands them to
// Flush MaxBatch at a time. One goroutine uses a Packer (the session's
// writer); Flush's slices are valid only during the call.
type Packer struct {
	sealer *Sealer
	// Flush sends sealed datagrams. An error stops Pack and is returned.
	Flush func(dgrams [][]byte) error
	// GSO: the peer takes frames with offload metadata (the session
	// negotiated CapGSO); otherwise checksums are finished here.
	GSO bool
	// MaxFrame is the peer's max frame; longer ordinary frames are TooBig
	// for the TLS path, which counts and drops them as it always did.
	MaxFrame int

	size    int
	enc     framing.Encoder
	cur     []byte
	bufs    [][]byte
	ptrs    []*[]byte
	scratch *[]byte
	err     error
	emit    func([]byte)
	stats   PackStats
}

// NewPacker packs for s.
func NewPacker(s *Sealer, maxFrame int, peerGSO bool, flush func([][]byte) error) *Packer {
	p := &Packer{sealer: s, Flush: flush, GSO: peerGSO, MaxFrame: maxFrame,
		bufs: make([][]byte, 0, MaxBatch), ptrs: make([]*[]byte, 0, MaxBatch)}
	p.emit = p.addSegment
	return p
}

// Stats are the Packer's counters.
func (p *Packer) Stats() PackStats { return p.stats }

// room is the longest frame (with a header for m) an empty datagram of size
// bytes carries.
func room(size int, m gso.Meta) int {
	return size - Overhead - 1 - framing.Meta.FrameHeaderLen(m)
}

// Pack sends frames (with metas[i], or none when metas is nil) in datagrams
// of at most size bytes. tooBig is called with the index of each frame that
// must go by TLS instead; it may be nil. Nothing is allocated once the pool
// is warm.
func (p *Packer) Pack(size int, frames [][]byte, metas []gso.Meta, tooBig func(i int)) error {
	p.size = min(max(size, MinDatagram), MaxDatagram)
	p.err = nil
	for i, f := range frames {
		var m gso.Meta
		if metas != nil {
			m = framing.Canonical(metas[i])
		}
		if !p.add(f, m) && tooBig != nil {
			tooBig(i)
		}
		if p.err != nil {
			break
		}
	}
	p.seal()
	if p.err == nil {
		p.flush()
	}
	p.release()
	err := p.err
	p.err = nil
	return err
}

// add sends one frame, reporting false when it must go by TLS.
func (p *Packer) add(f []byte, m gso.Meta) bool {
	plain := m.IsZero() || m.Flags == gso.DataValid && m.Type == gso.TypeNone
	switch {
	case !plain && !framing.ValidMeta(m, len(f)):
		p.stats.BadMeta++
		return true
	case plain && len(f) > p.MaxFrame:
		return false // the TLS path counts it as oversize
	case (plain || p.GSO) && len(f) <= room(p.size, m) && (!m.Segmented() || p.GSO):
		p.addFrame(f, m)
		return true
	}
	// Too long for a datagram, or offload work the peer cannot do: cut TCP
	// to the datagram size, finish checksums, or leave it to TLS.
	tm, isTCP := tcpMeta(f, m)
	if isTCP {
		pl, ok := gso.PlanSegments(tm, f)
		if !ok {
			p.stats.BadMeta++
			return true
		}
		mss := room(p.size, segmentMeta) - pl.Hdr
		if mss <= 0 {
			return false
		}
		if tm.Size == 0 || int(tm.Size) > mss {
			tm.Size = uint16(mss)
		}
		tm.Size = uint16(min(int(tm.Size), p.MaxFrame-pl.Hdr))
		p.stats.Resegmented++
		if p.GSO {
			return p.splitPartial(tm, f)
		}
		return p.split(tm, f)
	}
	if m.Segmented() {
		// UDP L4: the segment size is the application's datagram
		// boundary and cannot change. Segments that fit go here.
		pl, ok := gso.PlanSegments(m, f)
		if !ok {
			p.stats.BadMeta++
			return true
		}
		if pl.MaxSegmentLen() > room(p.size, gso.Meta{}) {
			p.stats.TooBig++
			return false
		}
		return p.split(m, f)
	}
	if len(f) > room(p.size, gso.Meta{}) {
		p.stats.TooBig++
		return false
	}
	p.stats.Completed++
	return p.split(m, f) // a partial checksum finished for a peer without offload
}

func (p *Packer) split(m gso.Meta, f []byte) bool {
	if p.scratch == nil {
		p.scratch = bufPool.Get().(*[]byte)
	}
	if !gso.Split(m, f, *p.scratch, p.emit) {
		p.stats.BadMeta++
	}
	return true
}

// segmentMeta is the metadata of a TCP segment cut for a peer that takes
// metadata: its checksum left partial, which that peer's device or kernel
// finishes (or never checks: a local receiver), so neither end sums the
// payload, and which its gso.Coalescer may join into a super-frame again.
// Its 4 bytes of frame header are planned for in every datagram (MSSFor),
// so a segment at the clamped MSS fits one datagram with or without them.
var segmentMeta = gso.Meta{Flags: gso.NeedsCsum}

// splitPartial cuts a TCP frame for a peer that takes metadata (splitPartial's
// segments carry segmentMeta with their offsets).
func (p *Packer) splitPartial(m gso.Meta, f []byte) bool {
	if p.scratch == nil {
		p.scratch = bufPool.Get().(*[]byte)
	}
	pl, ok := gso.PlanSegments(m, f)
	if !ok || pl.MaxSegmentLen() > len(*p.scratch) {
		p.stats.BadMeta++
		return true
	}
	pl.Partial = true
	sm := gso.Meta{Flags: gso.NeedsCsum, CsumStart: uint16(pl.L4), CsumOffset: 16}
	for i := range pl.Segs {
		n := gso.Segment(&pl, f, i, *p.scratch)
		if n < 0 {
			p.stats.BadMeta++
			return true
		}
		p.addFrame((*p.scratch)[:n], sm)
	}
	return true
}

// addSegment sends a segment gso.Split made. Its checksums were computed
// here, so a peer that takes metadata is told it may trust them
// (DataValid, no bytes on the wire): its kernel skips checking them, and
// its gso.Coalescer may join the segments into a super-frame again.
func (p *Packer) addSegment(seg []byte) {
	var m gso.Meta
	if p.GSO {
		m.Flags = gso.DataValid
	}
	p.addFrame(seg, m)
}

// tcpMeta is the offload metadata that lets gso.Split cut f, a TCP frame,
// at any segment size: m itself for a TCP super-frame, else one made from
// f's headers (gso.Segment recomputes the checksums, so a frame whose
// checksum is already complete can be cut too).
func tcpMeta(f []byte, m gso.Meta) (gso.Meta, bool) {
	switch m.Type &^ gso.TypeECN {
	case gso.TypeTCPv4, gso.TypeTCPv6:
		return m, true
	case gso.TypeNone:
	default:
		return m, false
	}
	l3, _, ok := gso.L3Offset(f)
	if !ok || len(f) < l3+40 {
		return m, false
	}
	var l4 int
	var typ uint8
	switch f[l3] >> 4 {
	case 4:
		ihl := int(f[l3]&0x0f) * 4
		// Not a fragment, protocol TCP.
		if f[l3+9] != 6 || ihl < 20 || binary.BigEndian.Uint16(f[l3+6:])&0x3fff != 0 {
			return m, false
		}
		l4, typ = l3+ihl, gso.TypeTCPv4
	case 6:
		if f[l3+6] != 6 {
			return m, false
		}
		l4, typ = l3+40, gso.TypeTCPv6
	default:
		return m, false
	}
	if len(f) < l4+20 {
		return m, false
	}
	hdr := l4 + int(f[l4+12]>>4)*4
	if hdr > len(f) {
		return m, false
	}
	return gso.Meta{Flags: gso.NeedsCsum, Type: typ, CsumStart: uint16(l4), CsumOffset: 16,
		HdrLen: uint16(hdr), Size: uint16(max(len(f)-hdr, 1))}, true
}

// addFrame puts f into the open datagram, sealing it and opening another
// when f does not fit.
func (p *Packer) addFrame(f []byte, m gso.Meta) {
	if p.err != nil {
		return
	}
	if len(f) > room(p.size, m) {
		p.stats.TooBig++ // a segment of a frame the peer's limits do not allow
		return
	}
	if p.cur != nil && !p.enc.Fits(len(f), m) {
		p.seal()
	}
	if p.cur == nil {
		if len(p.bufs) == MaxBatch {
			p.flush()
			if p.err != nil {
				return
			}
		}
		bp := bufPool.Get().(*[]byte)
		p.ptrs = append(p.ptrs, bp)
		// The batch's 4-byte message header lands in the last 4 bytes of
		// the datagram header, which Seal overwrites: the payload is the
		// batch body, count byte first.
		p.cur = p.enc.Begin((*bp)[:HeaderLen-framing.HeaderLen], TypeData, framing.Meta, nil, p.size-Overhead)
	}
	p.cur = p.enc.Add(p.cur, f, m)
	p.stats.Frames++
	p.stats.Bytes += uint64(len(f))
}

// seal closes the open datagram.
func (p *Packer) seal() {
	if p.cur == nil {
		return
	}
	b := p.enc.End(p.cur)
	p.cur = nil
	if len(b) <= HeaderLen {
		return
	}
	d, err := p.sealer.Seal(TypeData, b)
	if err != nil {
		p.err = err
		return
	}
	p.bufs = append(p.bufs, d)
}

// flush sends the sealed datagrams; it runs with no datagram open.
func (p *Packer) flush() {
	if len(p.bufs) == 0 {
		return
	}
	p.stats.Datagrams += uint64(len(p.bufs))
	if err := p.Flush(p.bufs); err != nil {
		p.err = err
	}
	for _, bp := range p.ptrs {
		PutBuf(bp)
	}
	clear(p.ptrs)
	p.ptrs = p.ptrs[:0]
	clear(p.bufs)
	p.bufs = p.bufs[:0]
}

func (p *Packer) release() {
	for _, bp := range p.ptrs {
		PutBuf(bp)
	}
	clear(p.ptrs)
	p.ptrs = p.ptrs[:0]
	clear(p.bufs)
	p.bufs = p.bufs[:0]
	p.cur = nil
	if p.scratch != nil {
		PutBuf(p.scratch)
		p.scratch = nil
	}
}

// Unpack hands fn each deliverable frame of a Data payload, in order, and
// returns how many it delivered and how many it skipped (over lim, or with
// metadata that does not fit). frame aliases payload. A malformed batch is an
// error; frames before the fault have been delivered (the datagram
// authenticated, so only a broken peer sends one).
func Unpack(payload []byte, lim framing.Limits, fn func(frame []byte, m gso.Meta)) (delivered, skipped int, err error) {
	var d framing.Decoder
	d.Limits = lim
	if err := d.BeginBody(framing.Meta, payload); err != nil {
		return 0, 0, err
	}
	for d.Left() > 0 {
		f, fi, err := d.NextInBody()
		if err != nil {
			return delivered, skipped, err
		}
		if fi.Verdict != framing.Deliver {
			skipped++
			continue
		}
		fn(f, fi.Meta)
		delivered++
	}
	return delivered, skipped, nil
}
