// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// link is the one connection between this member and one peer. Its reader
// goroutine demultiplexes Frames into the hubs' peer ports; each shared hub
// has a pump goroutine that drains its peer port in batches and writes them
// under the link's write lock (the hub API waits on one port at a time, so a
// pump per port is the way to block on all of them without polling).
type link struct {
	m    *Mesh
	peer string
	conn *tls.Conn
	// version is the link version both sides agreed on in the Hellos: 2
	// carries frames with their offload metadata (FramesGSO), 1 does not.
	version uint16

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // pumps and keepalive

	wmu         sync.Mutex
	wDeadlineAt time.Time
	epoch       time.Time
	lastWrite   atomic.Int64 // since epoch

	closeOnce sync.Once
	err       error

	// unsendable counts frames the pumps dropped because the peer's decoder
	// would refuse them (metadata that does not fit the frame, a length no
	// batch format carries); reported when the link ends.
	unsendable atomic.Uint64

	// Control messages (Attach, Detach) wait here for the link's control
	// writer rather than being written by the caller, which holds m.mu: a
	// peer that stops reading must not stall the whole mesh's control plane
	// (and with it every other link's reader) for the write timeout.
	ctrlMu   sync.Mutex
	ctrl     []byte
	ctrlKick chan struct{}

	// Guarded by m.mu.
	remote map[string]uint32    // hub name -> the peer's id for it
	ports  map[uint32]*peerPort // by local hub id
	// byID is ports, republished on every change, for the reader's
	// lock-free lookup.
	byID atomic.Pointer[map[uint32]*peerPort]

	udpLinkState
}

// peerPort is one shared hub on one link: the hub's PortPeer port facing the
// peer, and the peer's id for the hub (what outgoing Frames carry).
type peerPort struct {
	name     string
	remoteID uint32
	port     *hub.Port
}

// encodePool holds batch encode buffers, taken per batch rather than kept per
// pump: a member may share hundreds of hubs with each peer, mostly idle.
var encodePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 256<<10)
	return &b
}}

// acceptLink runs the acceptor side: read the dialer's Hello, check that the
// dialer is the member that should dial (its name sorts lower), answer.
func (m *Mesh) acceptLink(tc *tls.Conn) {
	_ = tc.SetDeadline(time.Now().Add(m.opt.DeadTimeout))
	name, version, err := readHelloVersion(tc)
	version = min(version, linkVersion)
	if err == nil && name >= m.opt.Self {
		err = fmt.Errorf("member %q dialled %q: the member whose name sorts lower dials", name, m.opt.Self)
	}
	if err == nil {
		// SetPeers is authoritative on both ends: a member not listed (removed,
		// or not yet known here) is refused and redials with backoff.
		m.mu.Lock()
		_, known := m.peers[name]
		m.mu.Unlock()
		if !known {
			err = fmt.Errorf("member %q is not a known peer", name)
		}
	}
	if err == nil {
		_, err = tc.Write(appendHelloVersion(nil, m.opt.Self, version))
	}
	if err != nil {
		m.log.Info("mesh link refused", "remote", tc.RemoteAddr(), "err", err)
		tc.NetConn().Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	err = m.runLink(tc, name, version)
	m.log.Info("mesh link from peer ended", "peer", name, "err", err)
}

// dialLink dials name and runs the link until it fails. A version 1 member
// closes the connection on a version 2 Hello without answering; dialLink then
// dials again at once offering 1, so a rolling upgrade keeps every link up.
func (m *Mesh) dialLink(ctx context.Context, name, addr string) error {
	tc, version, err := m.dialHello(ctx, name, addr, linkVersion)
	if errors.Is(err, errNoHello) {
		tc, version, err = m.dialHello(ctx, name, addr, minLinkVersion)
	}
	if err != nil {
		return err
	}
	return m.runLink(tc, name, version)
}

// errNoHello: the acceptor closed the connection instead of answering the
// Hello, as a member that does not speak the offered version does.
var errNoHello = errors.New("peer closed the link without answering the Hello")

func (m *Mesh) dialHello(ctx context.Context, name, addr string, offer uint16) (*tls.Conn, uint16, error) {
	tc, err := m.dialTLS(ctx, addr, ALPNLink)
	if err != nil {
		return nil, 0, err
	}
	_ = tc.SetDeadline(time.Now().Add(m.opt.DeadTimeout))
	if _, err := tc.Write(appendHelloVersion(nil, m.opt.Self, offer)); err != nil {
		tc.NetConn().Close()
		return nil, 0, err
	}
	got, version, err := readHelloVersion(tc)
	switch {
	case err == nil && got != name:
		err = fmt.Errorf("dialled %s for member %q, but %q answered", addr, name, got)
	case err == nil && version > offer:
		err = fmt.Errorf("member %q answered link version %d to an offer of %d", got, version, offer)
	case offer > minLinkVersion && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		err = fmt.Errorf("%w (version %d offered): %w", errNoHello, offer, err)
	}
	if err != nil {
		tc.NetConn().Close()
		return nil, 0, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, version, nil
}

func readHello(r io.Reader) (string, error) {
	name, _, err := readHelloVersion(r)
	return name, err
}

func readHelloVersion(r io.Reader) (string, uint16, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", 0, err
	}
	typ, n := parseHeader(h[:])
	if typ != msgHello || n > maxControl {
		return "", 0, fmt.Errorf("expected a mesh Hello, got message 0x%02x of %d bytes", typ, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", 0, err
	}
	return parseHello(body)
}

// runLink registers the link (replacing an older one to the same peer, which
// the peer has evidently given up), announces the local hubs and reads until
// the link fails. Nothing here or in the control path writes to the network
// under m.mu. On return every peer port of the link is closed, so the
// hubs forget the MACs learned behind the peer.
func (m *Mesh) runLink(tc *tls.Conn, peer string, version uint16) error {
	ctx, cancel := context.WithCancel(m.ctx)
	l := &link{
		m: m, peer: peer, conn: tc, version: version, ctx: ctx, cancel: cancel, epoch: time.Now(),
		remote: make(map[string]uint32), ports: make(map[uint32]*peerPort),
		ctrlKick: make(chan struct{}, 1),
	}
	if version >= udpLinkVersion {
		l.udpq = make(chan *[]byte, udpQueue)
	}
	l.publishLocked()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		l.close(ErrClosed)
		return ErrClosed
	}
	if old := m.links[peer]; old != nil {
		old.close(errors.New("replaced by a new link"))
	}
	m.links[peer] = l
	m.publishUDPLinksLocked()
	for name, lh := range m.hubs {
		l.localAttachLocked(name, lh)
	}
	m.mu.Unlock()
	m.log.Info("mesh link up", "peer", peer, "remote", tc.RemoteAddr(), "version", version)

	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.controlWriter()
	}()
	if l.udpq != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.udpWriter()
		}()
	}
	err := l.read()
	l.close(err)
	m.linkEnded(peer)

	m.mu.Lock()
	if m.links[peer] == l {
		delete(m.links, peer)
		m.publishUDPLinksLocked()
	}
	for id := range l.ports {
		l.closePortLocked(id)
	}
	m.mu.Unlock()
	l.wg.Wait()
	if n := l.unsendable.Load(); n > 0 {
		m.log.Error("frames dropped by the mesh pumps: their length or offload metadata cannot be sent", "peer", peer, "frames", n)
	}
	return l.err
}

// close ends the link; the reader returns and runLink cleans up. The raw
// connection is closed, not the TLS one, so no close_notify write can block
// on a peer that stopped reading.
func (l *link) close(err error) {
	l.closeOnce.Do(func() {
		l.err = err
		l.cancel()
		l.conn.NetConn().Close()
	})
}

func (l *link) publishLocked() {
	cp := make(map[uint32]*peerPort, len(l.ports))
	for id, pp := range l.ports {
		cp[id] = pp
	}
	l.byID.Store(&cp)
}

// localAttachLocked announces a local hub to the peer and, if the peer has
// it too, opens the shared port.
func (l *link) localAttachLocked(name string, lh *localHub) {
	l.queueControl(func(b []byte) []byte { return appendAttach(b, lh.id, name) })
	if rid, ok := l.remote[name]; ok {
		l.openPortLocked(name, lh, rid)
	}
}

func (l *link) localDetachLocked(name string, id uint32) {
	l.closePortLocked(id)
	l.queueControl(func(b []byte) []byte { return appendDetach(b, id) })
}

// queueControl appends a control message for the control writer, in order.
func (l *link) queueControl(appendMsg func([]byte) []byte) {
	l.ctrlMu.Lock()
	l.ctrl = appendMsg(l.ctrl)
	l.ctrlMu.Unlock()
	select {
	case l.ctrlKick <- struct{}{}:
	default:
	}
}

func (l *link) openPortLocked(name string, lh *localHub, rid uint32) {
	l.closePortLocked(lh.id)
	pp := &peerPort{name: name, remoteID: rid, port: lh.h.Attach(hub.PortPeer, "mesh:"+l.peer)}
	l.ports[lh.id] = pp
	l.publishLocked()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.pump(pp)
	}()
}

func (l *link) closePortLocked(id uint32) {
	pp := l.ports[id]
	if pp == nil {
		return
	}
	delete(l.ports, id)
	l.publishLocked()
	pp.port.Close()
}

// remoteAttach handles the peer's Attach.
func (l *link) remoteAttach(rid uint32, name string) {
	m := l.m
	m.mu.Lock()
	defer m.mu.Unlock()
	l.remote[name] = rid
	if lh := m.hubs[name]; lh != nil {
		l.openPortLocked(name, lh, rid)
	}
}

// remoteDetach handles the peer's Detach.
func (l *link) remoteDetach(rid uint32) {
	m := l.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, id := range l.remote {
		if id != rid {
			continue
		}
		delete(l.remote, name)
		if lh := m.hubs[name]; lh != nil {
			l.closePortLocked(lh.id)
		}
	}
}

// write sends b with one write; a write that cannot proceed for the write
// timeout fails the link.
func (l *link) write(b []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	now := time.Now()
	wt := l.writeTimeout()
	// Moving the deadline costs a syscall-free but locked timer update; do it
	// only when a quarter of it has passed.
	if now.Sub(l.wDeadlineAt) >= wt/4 {
		l.wDeadlineAt = now
		if err := l.conn.SetWriteDeadline(now.Add(wt)); err != nil {
			return err
		}
	}
	l.lastWrite.Store(int64(now.Sub(l.epoch)))
	// A batch's TLS records leave in one write(2) (WrapTCP), not one each.
	_, err := protocol.WriteHeld(l.conn, b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("peer %s accepted no data for %v", l.peer, wt)
	}
	return err
}

// writeTimeout is longer than the dead timeout: a busy link may take a while
// to drain a large batch while the peer is alive.
func (l *link) writeTimeout() time.Duration { return max(10*time.Second, l.m.opt.DeadTimeout) }

// pump drains one shared hub's peer port into batches, one write per ~256 KiB
// of them. On a version 2 link frames go with their metadata, super-frames
// whole; on a version 1 link a frame with metadata is finished in software
// first (segments, or a completed checksum), since the peer cannot.
func (l *link) pump(pp *peerPort) {
	var frames [maxBatch]*hub.Frame
	ps := pumpState{l: l, typ: msgFramesGSO, format: framing.Meta, limit: pumpBatchBody}
	if l.version < 2 {
		ps.typ, ps.format, ps.limit = msgFrames, framing.Plain, maxBody-4
	}
	binary.BigEndian.PutUint32(ps.prefix[:], pp.remoteID)
	emit := ps.addSegment // bound once: gso.Split calls it per segment
	for {
		n, err := pp.port.Dequeue(l.ctx, frames[:])
		if err != nil {
			return // port closed (hub detached, link down) or link ended
		}
		bp := encodePool.Get().(*[]byte)
		ps.b, ps.err = ps.enc.Begin((*bp)[:0], ps.typ, ps.format, ps.prefix[:], ps.limit), nil
		for i, f := range frames[:n] {
			m := framing.Canonical(f.Meta)
			switch {
			case !framing.ValidMeta(m, len(f.B)) || len(f.B) > framing.MaxSuperFrame ||
				len(f.B) > framing.MaxPlainFrame && !m.Segmented():
				// The peer would refuse the batch and drop the link.
				// Sessions validate metadata and hubs bound lengths on the
				// way in, so only a local bug gets here.
				l.unsendable.Add(1)
			case ps.format == framing.Meta || m.IsZero() || m == (gso.Meta{Flags: gso.DataValid}):
				ps.add(f.B, m)
			default:
				if ps.scratch == nil {
					ps.scratch = make([]byte, gso.MaxSuperFrame)
				}
				if !gso.Split(m, f.B, ps.scratch, emit) {
					l.unsendable.Add(1)
				}
			}
			f.Release()
			frames[i] = nil
		}
		b := ps.enc.End(ps.b)
		err = ps.err
		if err == nil && len(b) > 0 {
			err = l.write(b)
		}
		*bp = b[:0]
		encodePool.Put(bp)
		ps.b = nil
		if err != nil {
			l.close(err)
			return
		}
	}
}

// pumpState is one pump's encoder; addSegment, bound once, reaches it without
// a closure per frame.
type pumpState struct {
	l       *link
	enc     framing.Encoder
	b       []byte
	err     error
	typ     byte
	format  framing.Format
	limit   int
	prefix  [4]byte
	scratch []byte // for segmenting toward a version 1 peer; made on first use
}

func (ps *pumpState) add(f []byte, m gso.Meta) {
	if ps.err != nil {
		return
	}
	if len(f) > ps.format.MaxFrameLen() {
		ps.l.unsendable.Add(1)
		return
	}
	if !ps.enc.Fits(len(f), m) {
		ps.b = ps.enc.End(ps.b)
		if len(ps.b) >= pumpBatchBody {
			if ps.err = ps.l.write(ps.b); ps.err != nil {
				return
			}
			ps.b = ps.b[:0]
		}
		ps.b = ps.enc.Begin(ps.b, ps.typ, ps.format, ps.prefix[:], ps.limit)
	}
	ps.b = ps.enc.Add(ps.b, f, m)
}

func (ps *pumpState) addSegment(seg []byte) { ps.add(seg, gso.Meta{}) }

// controlWriter sends queued control messages as they come and a Keepalive
// whenever nothing was written for the interval.
func (l *link) controlWriter() {
	iv := l.m.opt.Keepalive
	keepalive := []byte{msgKeepalive, 0, 0, 0}
	t := time.NewTimer(iv)
	defer t.Stop()
	var out []byte
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.ctrlKick:
			l.ctrlMu.Lock()
			out, l.ctrl = l.ctrl, out[:0]
			l.ctrlMu.Unlock()
			if len(out) > 0 {
				if err := l.write(out); err != nil {
					l.close(err)
					return
				}
			}
			continue
		case <-t.C:
		}
		idle := time.Since(l.epoch) - time.Duration(l.lastWrite.Load())
		if idle >= iv-iv/16 {
			if err := l.write(keepalive); err != nil {
				l.close(err)
				return
			}
			idle = 0
		}
		t.Reset(iv - idle)
	}
}
