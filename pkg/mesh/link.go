package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubfleet/hubfleet/pkg/hub"
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

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // pumps and keepalive

	wmu         sync.Mutex
	wDeadlineAt time.Time
	epoch       time.Time
	lastWrite   atomic.Int64 // since epoch

	closeOnce sync.Once
	err       error

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
	name, err := readHello(tc)
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
		_, err = tc.Write(appendHello(nil, m.opt.Self))
	}
	if err != nil {
		m.log.Info("mesh link refused", "remote", tc.RemoteAddr(), "err", err)
		tc.NetConn().Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	err = m.runLink(tc, name)
	m.log.Info("mesh link from peer ended", "peer", name, "err", err)
}

// dialLink dials name and runs the link until it fails.
func (m *Mesh) dialLink(ctx context.Context, name, addr string) error {
	tc, err := m.dialTLS(ctx, addr, ALPNLink)
	if err != nil {
		return err
	}
	_ = tc.SetDeadline(time.Now().Add(m.opt.DeadTimeout))
	if _, err := tc.Write(appendHello(nil, m.opt.Self)); err != nil {
		tc.NetConn().Close()
		return err
	}
	got, err := readHello(tc)
	if err == nil && got != name {
		err = fmt.Errorf("dialled %s for member %q, but %q answered", addr, name, got)
	}
	if err != nil {
		tc.NetConn().Close()
		return err
	}
	_ = tc.SetDeadline(time.Time{})
	return m.runLink(tc, name)
}

func readHello(r io.Reader) (string, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	typ, n := parseHeader(h[:])
	if typ != msgHello || n > maxControl {
		return "", fmt.Errorf("expected a mesh Hello, got message 0x%02x of %d bytes", typ, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", err
	}
	return parseHello(body)
}

// runLink registers the link (replacing an older one to the same peer, which
// the peer has evidently given up), announces the local hubs and reads until
// the link fails. Nothing here or in the control path writes to the network
// under m.mu. On return every peer port of the link is closed, so the
// hubs forget the MACs learned behind the peer.
func (m *Mesh) runLink(tc *tls.Conn, peer string) error {
	ctx, cancel := context.WithCancel(m.ctx)
	l := &link{
		m: m, peer: peer, conn: tc, ctx: ctx, cancel: cancel, epoch: time.Now(),
		remote: make(map[string]uint32), ports: make(map[uint32]*peerPort),
		ctrlKick: make(chan struct{}, 1),
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
	for name, lh := range m.hubs {
		l.localAttachLocked(name, lh)
	}
	m.mu.Unlock()
	m.log.Info("mesh link up", "peer", peer, "remote", tc.RemoteAddr())

	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.controlWriter()
	}()
	err := l.read()
	l.close(err)

	m.mu.Lock()
	if m.links[peer] == l {
		delete(m.links, peer)
	}
	for id := range l.ports {
		l.closePortLocked(id)
	}
	m.mu.Unlock()
	l.wg.Wait()
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
	_, err := l.conn.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("peer %s accepted no data for %v", l.peer, wt)
	}
	return err
}

// writeTimeout is longer than the dead timeout: a busy link may take a while
// to drain a large batch while the peer is alive.
func (l *link) writeTimeout() time.Duration { return max(10*time.Second, l.m.opt.DeadTimeout) }

// pump drains one shared hub's peer port into Frames messages, one message
// and one write per batch of up to 128 frames.
func (l *link) pump(pp *peerPort) {
	var frames [maxBatch]*hub.Frame
	for {
		n, err := pp.port.Dequeue(l.ctx, frames[:])
		if err != nil {
			return // port closed (hub detached, link down) or link ended
		}
		bp := encodePool.Get().(*[]byte)
		b := (*bp)[:0]
		k := 0
		for _, f := range frames[:n] {
			if len(f.B) <= 0xffff { // the hub's MaxFrame is far below; never truncate
				frames[k] = f
				k++
			} else {
				f.Release()
			}
		}
		if k > 0 {
			b = appendFrames(b, pp.remoteID, frames[:k])
		}
		for i := range k {
			frames[i].Release()
			frames[i] = nil
		}
		if k > 0 {
			err = l.write(b)
		}
		*bp = b[:0]
		encodePool.Put(bp)
		if err != nil {
			l.close(err)
			return
		}
	}
}

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
