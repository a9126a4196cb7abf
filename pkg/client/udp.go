// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/tap"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// The UDP data channel (issue #14): with the member's agreement a session's
// frames travel as datagrams (pkg/datagram) while the UDP path works — no
// TCP inside TCP on lossy links — and over the TLS connection whenever it
// does not; the TLS connection stays up either way, as the control channel,
// so losing the UDP path never ends the session.

// udpCaps are the capabilities the client offers for the UDP channel.
func (c *client) udpCaps() uint32 {
	if c.opts.NoUDP {
		return 0
	}
	if datagram.PreferredSuite() == datagram.ChaCha20Poly1305 {
		return protocol.CapUDP | protocol.CapUDPChaCha
	}
	return protocol.CapUDP
}

// frameSink is what the TAP Reader sends into (tap.Sink).
type frameSink interface {
	WriteFramesGSO(frames [][]byte, metas []gso.Meta) error
}

// sink is where the TAP Reader sends: the UDP channel when the session has
// one (it falls back to conn by itself), else conn.
func (c *client) sink(conn *protocol.Conn) frameSink {
	if c.udp != nil {
		return c.udp
	}
	return conn
}

// udpChannel is one session's UDP half.
type udpChannel struct {
	c      *client
	conn   *protocol.Conn
	sock   *udpio.Conn
	server netip.AddrPort
	sealer *datagram.Sealer
	opener *datagram.Opener // the UDP reader's
	path   *datagram.Path
	lim    framing.Limits

	// Sending: the TAP Reader runs a goroutine per device queue, each of
	// which may call WriteFramesGSO.
	mu     sync.Mutex
	packer *datagram.Packer
	tooBig []int
	tlsF   [][]byte
	tlsM   []gso.Meta
	onBig  func(int)

	// Receiving (the UDP reader goroutine): frames go to the TAP through
	// a queue of their own where the device has several, else through the
	// shared one with offload work done here, so no device state is touched
	// by two goroutines.
	dev     tap.Device
	offload interface{ Accepts(gso.Meta) bool }
	tapBuf  []byte
	tapBufs [][]byte
	scratch []byte
	toTAP   func([]byte, gso.Meta)
	plain   func([]byte)
	ackBuf  []byte
	// coal joins the TCP segments of a receive batch back into
	// super-frames, built in tapBuf behind the virtio header (nil when the
	// TAP takes no TCP super-frames).
	coal *gso.Coalescer

	cancel context.CancelFunc
	done   sync.WaitGroup

	rx, rxBad, rxReplay, tx, txErr, tapErr atomic.Uint64
}

// startUDP sets up the UDP channel the member granted, or returns nil (the
// session then runs on TLS alone).
func (c *client) startUDP(ctx context.Context, conn *protocol.Conn, res *protocol.LoginResult) *udpChannel {
	if res.Capabilities&protocol.CapUDP == 0 || res.UDP == nil {
		return nil
	}
	tc, ok := conn.NetConn().(*tls.Conn)
	if !ok {
		return nil
	}
	remote, ok := tc.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return nil
	}
	port := res.UDP.Port
	if port == 0 {
		port = uint16(remote.Port)
	}
	server := netip.AddrPortFrom(remote.AddrPort().Addr().Unmap(), port)
	p := datagram.Params{Session: res.UDP.Session, Suite: datagram.Suite(res.UDP.Suite), Role: datagram.Client,
		Exporter: datagram.TLSExporter(tc.ConnectionState())}
	if !p.Suite.Valid() {
		c.log.Warn("the member chose an unknown UDP cipher suite; staying on TLS", "suite", res.UDP.Suite)
		return nil
	}
	sealer, err := datagram.NewSealer(p)
	if err != nil {
		c.log.Warn("UDP keys could not be derived; staying on TLS", "err", err)
		return nil
	}
	opener, err := datagram.NewOpener(p)
	if err != nil {
		c.log.Warn("UDP keys could not be derived; staying on TLS", "err", err)
		return nil
	}
	network := "udp4"
	if !server.Addr().Is4() {
		network = "udp6"
	}
	sock, err := udpio.Listen(network, ":0")
	if err != nil {
		c.log.Warn("cannot open a UDP socket; staying on TLS", "err", err)
		return nil
	}
	cfg := datagram.PathConfig{MaxSize: udpio.MaxPayload(udpio.RouteMTU(server), server.Addr())}
	u := &udpChannel{c: c, conn: conn, sock: sock, server: server, sealer: sealer, opener: opener,
		path: datagram.NewPath(cfg, time.Now()), ackBuf: make([]byte, datagram.MaxDatagram)}
	mf := res.MaxFrame
	peerGSO := res.Capabilities&protocol.CapGSO != 0
	u.lim = framing.Limits{MaxFrame: max(mf, c.maxWant)}
	if peerGSO {
		u.lim.MaxSuper = protocol.MaxSuperFrame
	}
	u.packer = datagram.NewPacker(sealer, mf, peerGSO, u.flush)
	u.onBig = u.addTooBig
	qs := tap.Queues(c.dev)
	u.dev = qs[len(qs)-1]
	u.offload = c.dev.Offload()
	u.tapBuf = make([]byte, len(c.tapBuf))
	u.tapBufs = make([][]byte, 1)
	u.scratch = make([]byte, protocol.MaxSuperFrame)
	u.toTAP, u.plain = u.writeTAP, u.writePlain
	if u.offload.Accepts(gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4}) &&
		u.offload.Accepts(gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv6}) {
		u.coal = gso.NewCoalescer(u.tapBuf[tap.Headroom:], u.writeTAP)
		u.toTAP = u.coal.Add
	}

	ctx, u.cancel = context.WithCancel(ctx)
	u.done.Add(2)
	go func() {
		defer u.done.Done()
		u.read()
	}()
	go func() {
		defer u.done.Done()
		u.probe(ctx)
	}()
	return u
}

// stop ends the channel; nil-safe.
func (u *udpChannel) stop() {
	if u == nil {
		return
	}
	u.cancel()
	u.sock.Close()
	u.done.Wait()
	st, changes, _ := u.path.State()
	u.c.log.Info("UDP channel closed", "path", st.String(), "pathChanges", changes, "pmtu", u.path.Size(),
		"rxDatagrams", u.rx.Load(), "rxRejected", u.rxBad.Load(), "rxReplayed", u.rxReplay.Load(),
		"txDatagrams", u.tx.Load(), "txErrors", u.txErr.Load(), "tapWriteErrors", u.tapErr.Load())
}

// WriteFramesGSO sends a batch from the TAP: by UDP while the path is up,
// frames the path cannot carry and everything else by TLS. TCP SYNs get an
// MSS whose segments fit a datagram whole (datagram.ClampMSS), whichever
// way they go: the connection outlives a fallback.
func (u *udpChannel) WriteFramesGSO(frames [][]byte, metas []gso.Meta) error {
	u.clampMSS(frames, metas)
	if !u.path.Up() {
		return u.conn.WriteFramesGSO(frames, metas)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	_ = u.packer.Pack(u.path.Size(), frames, metas, u.onBig)
	if len(u.tooBig) == 0 {
		return nil
	}
	for _, i := range u.tooBig {
		u.tlsF = append(u.tlsF, frames[i])
		m := gso.Meta{}
		if metas != nil {
			m = metas[i]
		}
		u.tlsM = append(u.tlsM, m)
	}
	err := u.conn.WriteFramesGSO(u.tlsF, u.tlsM)
	clear(u.tlsF)
	u.tlsF, u.tlsM, u.tooBig = u.tlsF[:0], u.tlsM[:0], u.tooBig[:0]
	return err
}

func (u *udpChannel) addTooBig(i int) { u.tooBig = append(u.tooBig, i) }

// clampMSS clamps the SYNs among frames from the TAP (which the client owns
// until the next read) to the path's planned size.
func (u *udpChannel) clampMSS(frames [][]byte, metas []gso.Meta) {
	size := u.path.PlanSize()
	for i, f := range frames {
		var m gso.Meta
		if metas != nil {
			m = metas[i]
		}
		datagram.ClampMSS(f, m, size)
	}
}

// flush is the Packer's: a failed send is loss, which the path notices.
func (u *udpChannel) flush(ds [][]byte) error {
	if err := u.sock.WriteBatch(u.server, ds); err != nil {
		u.txErr.Add(uint64(len(ds)))
		return nil
	}
	u.tx.Add(uint64(len(ds)))
	return nil
}

// probe sends the path's probes and reports its changes.
func (u *udpChannel) probe(ctx context.Context) {
	buf := make([]byte, datagram.MaxDatagram)
	t := time.NewTimer(0)
	defer t.Stop()
	var probes [2]datagram.Probe
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := u.path.Tick(time.Now(), &probes)
		for _, pr := range probes[:n] {
			if d, err := u.sealer.SealProbe(buf, pr.ID, pr.Size); err == nil {
				u.send(d)
			}
		}
		if st, changes, _ := u.path.State(); changes != last {
			last = changes
			switch st {
			case datagram.Up:
				u.c.say("UDP path to %s up (datagrams up to %d bytes)", u.server, u.path.Size())
			case datagram.Down:
				u.c.say("UDP path to %s down: frames go over TLS until it answers again", u.server)
			}
		}
		t.Reset(u.path.NextTick())
	}
}

func (u *udpChannel) send(d []byte) {
	one := [1][]byte{d}
	if err := u.sock.WriteBatch(u.server, one[:]); err != nil {
		u.txErr.Add(1)
		return
	}
	u.tx.Add(1)
}

// read receives datagrams until the socket closes.
func (u *udpChannel) read() {
	on := u.onDatagram
	for {
		if err := u.sock.ReadBatch(on); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				u.c.log.Warn("UDP receive failed; frames stay on TLS", "err", err)
			}
			return
		}
		if u.coal != nil {
			u.coal.Flush() // no frame waits for the next batch
		}
	}
}

func (u *udpChannel) onDatagram(d []byte, from netip.AddrPort) {
	h, payload, err := u.opener.Open(d)
	if err != nil {
		if errors.Is(err, datagram.ErrReplay) {
			u.rxReplay.Add(1)
		} else {
			u.rxBad.Add(1)
		}
		return
	}
	u.rx.Add(1)
	switch h.Type {
	case datagram.TypeData:
		if _, _, err := datagram.Unpack(payload, u.lim, u.toTAP); err != nil {
			u.rxBad.Add(1)
		}
	case datagram.TypeProbe:
		if id, ok := datagram.ParseProbe(payload); ok {
			if a, err := u.sealer.SealProbeAck(u.ackBuf, id, len(d)); err == nil {
				u.send(a)
			}
		}
	case datagram.TypeProbeAck:
		if id, size, ok := datagram.ParseProbeAck(payload); ok {
			u.path.OnAck(time.Now(), id, size)
		}
	}
}

// writeTAP writes one received frame, as client.writeTAP does; offload work
// the device does not take is done here first.
func (u *udpChannel) writeTAP(frame []byte, m gso.Meta) {
	// The far end's SYNs too (frame is this reader's datagram buffer): the
	// TCP here then sends segments that fit, even when the far end did not
	// clamp (a host on the member's LAN bridge, an older client).
	datagram.ClampMSS(frame, m, u.path.PlanSize())
	if !m.IsZero() && !u.offload.Accepts(m) {
		if !gso.Split(m, frame, u.scratch, u.plain) {
			u.tapErr.Add(1)
		}
		return
	}
	if len(frame) > len(u.tapBuf)-tap.Headroom {
		u.tapErr.Add(1)
		return
	}
	m.PutVirtio(u.tapBuf[:tap.Headroom])
	n := len(frame)
	if n > 0 && &frame[0] != &u.tapBuf[tap.Headroom] { // a run the Coalescer built lies there already
		copy(u.tapBuf[tap.Headroom:], frame)
	}
	u.tapBufs[0] = u.tapBuf[:tap.Headroom+n]
	if _, err := u.dev.Write(u.tapBufs, tap.Headroom); err != nil {
		u.tapErr.Add(1)
	}
}

func (u *udpChannel) writePlain(frame []byte) { u.writeTAP(frame, gso.Meta{}) }
