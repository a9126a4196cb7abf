// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// Relayed sessions. The entry member opens a new mesh connection per session
// (ALPN hubfleet-relay/1), so a slow session never holds up another one or the
// static-hub link. On it the entry speaks the ordinary client protocol: it
// sends the client's Login with Relayed set, reads the owner's LoginResult and
// then copies bytes both ways. Keepalives, Close and Shutdown therefore run
// end to end between client and owner; the entry only decrypts one TLS
// session and encrypts the other.

// OnRelayedSession sets the owner-side hook: fn gets each relayed login that
// arrives over the mesh, with the mTLS connection positioned right after the
// Login message. fn owns conn: it authenticates req as for any login, answers
// with protocol.WriteResult and, on OK, runs the session
// (protocol.NewConn(conn, res.ConnConfig())) — exactly the member's normal
// session path after ReadLogin. fn runs in its own goroutine and may block for
// the session's life. Without a hook, relayed logins are refused with
// NotServedHere.
func (m *Mesh) OnRelayedSession(fn func(req *protocol.LoginRequest, conn net.Conn)) {
	m.mu.Lock()
	m.onRelay = fn
	m.mu.Unlock()
}

// acceptRelay reads a relayed login. Only logins marked Relayed are accepted
// on the mesh port: the peer certificate makes the entry trusted to state
// RelayEntry and RelayClientAddr, which a client must never be able to do.
func (m *Mesh) acceptRelay(tc *tls.Conn) {
	// Close must not wait out the login timeout of a relay that sends nothing.
	stop := context.AfterFunc(m.ctx, func() { tc.NetConn().Close() })
	req, err := protocol.ReadLogin(tc)
	if !stop() {
		return
	}
	if err != nil {
		if le, ok := errors.AsType[*protocol.LoginError](err); ok {
			_ = protocol.WriteResult(tc, le.Result())
		}
		tc.Close()
		return
	}
	m.mu.Lock()
	fn := m.onRelay
	m.mu.Unlock()
	refuse := func(code protocol.Code, msg string) {
		_ = protocol.WriteResult(tc, &protocol.LoginResult{Code: code, Message: msg})
		tc.Close()
	}
	switch {
	case !req.Relayed:
		refuse(protocol.BadRequest, "a login on the mesh port must be a relayed login")
	case fn == nil:
		refuse(protocol.NotServedHere, "member "+m.opt.Self+" does not accept relayed sessions")
	default:
		go fn(req, tc)
	}
}

// DialRelay opens a relayed session to peer for req (the login the client
// sent the entry member). It returns the connection to the owner positioned
// after the owner's LoginResult, and that result. A refusal returns the result
// and its *protocol.LoginError and no connection; a failure to reach the peer
// returns no result.
func (m *Mesh) DialRelay(ctx context.Context, peer string, req protocol.LoginRequest) (net.Conn, *protocol.LoginResult, error) {
	m.mu.Lock()
	addr, ok := m.peers[peer]
	m.mu.Unlock()
	if !ok {
		return nil, nil, fmt.Errorf("relay to %q: not a known peer of %q", peer, m.opt.Self)
	}
	// Connect and handshake are bounded as a client's are
	// (protocol.HandshakeTimeout): a frozen owner's kernel still accepts
	// the connection, and the client waiting behind this dial should be told
	// to retry within its own dead-peer timeout, not the login timeout.
	hctx, cancel := context.WithTimeout(ctx, protocol.HandshakeTimeout)
	tc, err := m.dialTLS(hctx, addr, ALPNRelay)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("relay to %s: %w", peer, err)
	}
	req.Relayed = true
	req.RelayEntry = m.opt.Self
	res, err := protocol.Login(ctx, tc, req)
	if err != nil {
		tc.Close()
		return nil, res, err
	}
	return tc, res, nil
}

// Relay is the entry member's whole relay path for a client whose Login it
// has read (protocol.ReadLogin) and authorised: it dials the owner, forwards
// the owner's LoginResult to client (refusals included) and splices the two
// connections until either side ends. A failure before any result exists is
// returned without writing to client, so the caller answers it (Internal, or
// a retry on another member). The caller closes client.
func (m *Mesh) Relay(ctx context.Context, peer string, req protocol.LoginRequest, client net.Conn) error {
	if req.RelayClientAddr == "" {
		req.RelayClientAddr = client.RemoteAddr().String()
	}
	if err := OfferHandoff(&req); err != nil {
		return err
	}
	owner, res, err := m.DialRelay(ctx, peer, req)
	if res == nil {
		return err
	}
	if werr := protocol.WriteResult(client, res); werr != nil || err != nil {
		if owner != nil {
			owner.Close()
		}
		return errors.Join(err, werr)
	}
	if res.Capabilities&protocol.CapHandoff != 0 {
		return SpliceRaw(client, owner)
	}
	defer owner.Close()
	return Splice(client, owner, res.DeadPeerTimeout)
}

// OfferHandoff gives a relayed login whose client offered CapHandoff a
// fresh handoff token (protocol/handoff.go). An owner that grants it answers
// with CapHandoff; the entry then forwards that answer and carries the
// session with SpliceRaw.
func OfferHandoff(req *protocol.LoginRequest) error {
	if req.Capabilities&protocol.CapHandoff == 0 {
		return nil
	}
	t, err := protocol.NewHandoffToken()
	if err != nil {
		return fmt.Errorf("relay: a handoff token: %w", err)
	}
	req.HandoffToken = t
	return nil
}

// SpliceRaw carries a handed-off session at the entry: it copies bytes both
// ways between the TCP connections under the client's and the owner's TLS
// connections (protocol.SpliceTarget), in the kernel (splice(2)), until
// either side ends, then closes both. The TLS sessions above are dropped
// without close_notify: the bytes that follow belong to the client's new
// TLS session with the owner. Unlike Splice there is no idle timeout: the
// client and the owner each end a session whose peer goes silent (their
// keepalives cross the copy), and closing their end closes the copy; an
// entry that sees the hub move closes it itself (pkg/member/cluster).
func SpliceRaw(client, owner net.Conn) error {
	a, b := protocol.SpliceTarget(client), protocol.SpliceTarget(owner)
	errc := make(chan error, 2)
	cp := func(dst, src net.Conn) {
		var err error
		if rf, ok := dst.(io.ReaderFrom); ok {
			_, err = rf.ReadFrom(src)
		} else {
			_, err = io.Copy(dst, src)
		}
		a.Close()
		b.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		errc <- err
	}
	go cp(a, b)
	go cp(b, a)
	err := <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	return err
}

// spliceBuf is the most one direction of a splice buffers before the reader
// waits for the writer. A tls.Conn Read returns at most one record (16 KiB);
// letting records pile up while the previous write is in flight turns many
// record-sized writes into a few large ones, and lets one core decrypt while
// another encrypts.
const spliceBuf = 128 << 10

var splicePool = sync.Pool{New: func() any {
	b := make([]byte, 0, spliceBuf)
	return &b
}}

// Splice copies bytes both ways between a and b until one side ends or stays
// silent for idle (the session's dead-peer timeout: end-to-end keepalives
// cross the splice, so a live session is never silent that long), then closes
// both. It returns the first error, nil when a side closed cleanly.
func Splice(a, b net.Conn, idle time.Duration) error {
	if idle <= 0 {
		idle = protocol.DefaultDeadPeerTimeout
	}
	errc := make(chan error, 2)
	cp := func(dst, src net.Conn) {
		err := pipe(dst, src, idle)
		// Closing both ends unblocks the other direction at once.
		a.Close()
		b.Close()
		errc <- err
	}
	go cp(a, b)
	go cp(b, a)
	err := <-errc
	<-errc
	return err
}

// pipeState is one direction of a splice: the caller's goroutine reads, a
// second one writes whatever has accumulated since its last write. The
// pending buffer comes from splicePool only while there are bytes in flight,
// so an idle relayed session holds no copy buffer, only its goroutines.
type pipeState struct {
	mu      sync.Mutex
	cond    sync.Cond
	pending *[]byte // nil when empty
	done    bool    // the reader has finished
	werr    error   // the writer failed
}

func pipe(dst, src net.Conn, idle time.Duration) error {
	p := &pipeState{}
	p.cond.L = &p.mu
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		p.write(dst, idle)
	}()
	rerr := p.read(src, idle)
	p.mu.Lock()
	p.done = true
	p.cond.Broadcast()
	p.mu.Unlock()
	<-wdone
	if p.pending != nil {
		putSplice(p.pending)
	}
	if p.werr != nil {
		return p.werr
	}
	return rerr
}

func putSplice(b *[]byte) {
	*b = (*b)[:0]
	splicePool.Put(b)
}

func (p *pipeState) read(src net.Conn, idle time.Duration) error {
	var tmp [16<<10 + 512]byte // one TLS record's plaintext
	var armedAt time.Time
	for {
		// As on links, the deadline moves only every eighth of the timeout.
		if now := time.Now(); now.Sub(armedAt) >= idle/8 {
			armedAt = now
			if err := src.SetReadDeadline(now.Add(idle)); err != nil {
				return err
			}
		}
		n, err := src.Read(tmp[:])
		if n > 0 {
			p.mu.Lock()
			for p.werr == nil && p.pending != nil && len(*p.pending)+n > cap(*p.pending) {
				p.cond.Wait()
			}
			if p.werr != nil {
				p.mu.Unlock()
				return p.werr
			}
			if p.pending == nil {
				p.pending = splicePool.Get().(*[]byte)
			}
			*p.pending = append(*p.pending, tmp[:n]...)
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

func (p *pipeState) write(dst net.Conn, idle time.Duration) {
	wt := max(idle, protocol.DefaultWriteTimeout)
	var armedAt time.Time
	for {
		p.mu.Lock()
		for p.pending == nil && !p.done {
			p.cond.Wait()
		}
		out := p.pending
		p.pending = nil
		p.cond.Broadcast()
		p.mu.Unlock()
		if out == nil {
			return // the reader finished and everything was written
		}
		var err error
		if now := time.Now(); now.Sub(armedAt) >= wt/4 {
			armedAt = now
			err = dst.SetWriteDeadline(now.Add(wt))
		}
		if err == nil {
			// One write(2) for the chunk's records (WrapTCP), not one each.
			_, err = protocol.WriteHeld(dst, *out)
		}
		putSplice(out)
		if err != nil {
			p.fail(err)
			return
		}
	}
}

func (p *pipeState) fail(err error) {
	p.mu.Lock()
	p.werr = err
	p.cond.Broadcast()
	p.mu.Unlock()
}
