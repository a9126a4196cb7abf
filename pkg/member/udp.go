// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// The UDP data channel (issue #14): a session that negotiated CapUDP sends
// and receives frames as datagrams (pkg/datagram) on the member's UDP socket
// whenever its path is up, and over TLS otherwise. TLS stays the control
// channel: login, keepalives, Close and Shutdown, and every frame while the
// path is down or too small for it.

// UDPOff as Config.UDPListen turns the UDP data channel off.
const UDPOff = "off"

// UDPAddr is where a member with cfg serves UDP and the port it advertises
// (0 when it is the TCP listen port's number), or ok=false with UDP off.
func UDPAddr(cfg *Config) (addr string, advertise uint16, ok bool) {
	switch cfg.UDPListen {
	case UDPOff:
		return "", 0, false
	case "":
		return cfg.Listen, 0, true
	}
	_, up, err1 := net.SplitHostPort(cfg.UDPListen)
	_, tp, err2 := net.SplitHostPort(cfg.Listen)
	if err1 == nil && err2 == nil && up == tp {
		return cfg.UDPListen, 0, true
	}
	n, err := net.LookupPort("udp", up)
	if err != nil {
		return cfg.UDPListen, 0, true
	}
	return cfg.UDPListen, uint16(n), true
}

// UDPForwarder reaches the other members of a cluster for the UDP data
// channel (cluster mode: pkg/mesh's datagram forwarding). Behind a Service
// a client's datagrams may reach a member other than the one holding its
// session: that member forwards them, still sealed, to the owner, and sends
// the owner's datagrams to the client from its own socket.
type UDPForwarder interface {
	// Tag goes in the first four bytes of every datagram session ID this
	// member assigns, so the others can tell the owner from the header.
	Tag() uint32
	// Owner is the member whose sessions carry tag.
	Owner(tag uint32) (member string, ok bool)
	// Send forwards sealed datagrams of the client at addr to member:
	// toClient false for a session of member's, true for member to send
	// from its UDP socket. It copies ds before returning.
	Send(member string, toClient bool, addr netip.AddrPort, ds [][]byte) error
}

// udpServer is the member's UDP socket and the sessions reachable through it.
type udpServer struct {
	s    *Server
	conn *udpio.Conn
	port uint16 // advertised in the LoginResult; 0: the TCP port's number
	fwd  UDPForwarder

	mu   sync.RWMutex
	byID map[datagram.SessionID]*udpSession

	// Reader state: the UDP reader's and, in cluster mode, the mesh link
	// readers' that deliver forwarded datagrams, one at a time under rmu.
	rmu     sync.Mutex
	touched []*udpSession
	ackBuf  []byte
	// pending are the datagrams of the current read for other members'
	// sessions, by owner and client; sent when the read is done.
	pending []fwdGroup

	// Totals for the metrics (udp_metrics.go), beside each session's own.
	unknown, malformed, rx, rxBad, rxReplay, tx, txErr atomic.Uint64
	// Forwarded: to owners (received here for another member's session),
	// to clients (sent here for another member's session), and lost (the
	// mesh could not take them).
	fwdToOwner, fwdToClient, fwdErr atomic.Uint64
	// Segments joined into super-frames, and the super-frames (udpSession.emit).
	joined, built atomic.Uint64
}

// fwdGroup is one read's datagrams for one owner from one client.
type fwdGroup struct {
	owner string
	from  netip.AddrPort
	ds    [][]byte
}

// udpDest is where a session's datagrams go: the client's address, and the
// member whose socket they leave from ("" this one's).
type udpDest struct {
	addr netip.AddrPort
	via  string
}

// udpSession is one session's half of the channel.
type udpSession struct {
	u      *udpServer
	se     *session
	id     datagram.SessionID
	sealer *datagram.Sealer
	opener *datagram.Opener // the UDP reader goroutine's
	path   *datagram.Path
	lim    framing.Limits
	peer   atomic.Pointer[udpDest]

	// fwd serialises the hub port's ingress: hub.Port.Forward is for one
	// goroutine, and this session's frames now come from two (its TLS
	// reader and the UDP reader).
	fwd sync.Mutex
	in  []*hub.Frame // the UDP reader's frames not yet forwarded
	// coal joins the client's TCP segments back into super-frames (as the
	// client's receiver does, pkg/client/udp.go), built in run, a hub
	// frame handed to the hub whole when a run of two or more is emitted.
	// The hub then queues and forwards one frame where the datagrams
	// brought dozens: its egress queues (counted in frames, and bytes of
	// pinned buffer) held ~1.4 MB of 1.4 KB segments, and a burst of the
	// client's TCP overflowed them. Both under the reader's rmu.
	coal    *gso.Coalescer
	run     *hub.Frame
	touched bool // in u.touched

	// Writer state (the session's writer goroutine).
	packer *datagram.Packer
	tooBig []int
	tlsF   [][]byte
	tlsM   []gso.Meta
	onBig  func(int)

	probeBuf []byte // the path goroutine's

	rx, rxBad, rxReplay, tx, txErr atomic.Uint64
}

// ServeUDP runs the UDP data channel on c until c is closed; sessions that
// log in afterwards are offered CapUDP. advertise is the port clients are
// told to send to (0: the number of the TCP port they dialled, which is what
// a Kubernetes Service exposing one port number for TCP and UDP needs).
func (s *Server) ServeUDP(c *udpio.Conn, advertise uint16) error {
	u := &udpServer{s: s, conn: c, port: advertise, fwd: s.udpFwd, byID: map[datagram.SessionID]*udpSession{},
		ackBuf: make([]byte, datagram.MaxDatagram)}
	if !s.udp.CompareAndSwap(nil, u) {
		return errors.New("member: ServeUDP called twice")
	}
	defer s.udp.CompareAndSwap(u, nil)
	gsoOn, groOn := c.Offloads()
	s.log.Info("UDP data channel listening", "addr", c.LocalAddr().String(), "gso", gsoOn, "gro", groOn)
	onDatagram := u.onLocalDatagram
	for {
		err := c.ReadBatch(onDatagram)
		u.rmu.Lock()
		u.flush()
		u.rmu.Unlock()
		u.forwardPending()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// offerUDP grants CapUDP to a client that asked, when this member serves UDP:
// keys from the client's TLS session for a login that came straight from the
// client, and, for a relayed one, the keys its entry member exported and sent
// with the login (udprelay.go; an entry that sends none keeps it on TLS).
func (s *Server) offerUDP(conn net.Conn, req *protocol.LoginRequest, se *session, res *protocol.LoginResult) {
	u := s.udp.Load()
	if u == nil || req.Capabilities&protocol.CapUDP == 0 || s.settings.Load().udpOff {
		return
	}
	var exp datagram.Exporter
	var client netip.AddrPort // the client's address, for the path's size ceiling
	var keys *relayKeys
	if req.Relayed {
		if keys = s.relayUDPKeys(req); keys == nil {
			return
		}
		exp = keys.table.Export
		client, _ = netip.ParseAddrPort(req.RelayClientAddr)
	} else {
		tc, ok := conn.(*tls.Conn)
		if !ok {
			return
		}
		exp = datagram.TLSExporter(tc.ConnectionState())
		if ta, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
			client = ta.AddrPort()
		}
	}
	suite := datagram.PreferredSuite()
	if req.Capabilities&protocol.CapUDPChaCha != 0 {
		suite = datagram.ChaCha20Poly1305
	}
	id := u.newSessionID()
	if keys != nil {
		keys.id = id
	}
	p := datagram.Params{Session: id, Suite: suite, Role: datagram.Server, Exporter: exp}
	sealer, err := datagram.NewSealer(p)
	if err != nil {
		s.log.Warn("UDP keys could not be derived; the session stays on TLS", "err", err)
		return
	}
	opener, err := datagram.NewOpener(p)
	if err != nil {
		s.log.Warn("UDP keys could not be derived; the session stays on TLS", "err", err)
		return
	}
	// The search's ceiling is the route towards the client's TCP address:
	// its datagrams come from the same host, behind the same links.
	var pcfg datagram.PathConfig
	if client.IsValid() {
		pcfg.MaxSize = udpio.MaxPayload(udpio.RouteMTU(client), client.Addr())
	}
	us := &udpSession{u: u, se: se, id: id, sealer: sealer, opener: opener,
		path: datagram.NewPath(pcfg, time.Now())}
	mf := res.MaxFrame
	if mf == 0 {
		mf = protocol.DefaultMaxFrame
	}
	peerGSO := res.Capabilities&protocol.CapGSO != 0
	us.lim = framing.Limits{MaxFrame: mf}
	if peerGSO {
		us.lim.MaxSuper = protocol.MaxSuperFrame
	}
	us.packer = datagram.NewPacker(sealer, mf, peerGSO, us.flushDatagrams)
	us.onBig = us.addTooBig
	if peerGSO {
		us.run = hub.NewFrameSize(protocol.MaxSuperFrame)
		us.coal = gso.NewCoalescer(us.run.Buf()[:protocol.MaxSuperFrame], us.emit)
	}
	se.udp = us
	res.Capabilities |= protocol.CapUDP
	res.UDP = &protocol.UDPParams{Port: u.port, Session: id, Suite: uint8(suite)}
}

// startUDP makes the session reachable by datagrams and runs its path
// prober until ctx ends; the returned function waits for it and removes the
// session.
func (se *session) startUDP(ctx context.Context) (stop func()) {
	us := se.udp
	if us == nil {
		return func() {}
	}
	u := us.u
	u.mu.Lock()
	u.byID[us.id] = us
	u.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		us.probe(ctx)
	}()
	return func() {
		<-done
		u.mu.Lock()
		delete(u.byID, us.id)
		u.mu.Unlock()
		// No datagram reaches us now; what the Coalescer holds goes with the
		// read's other frames (u.flush), and its buffer back to the pool.
		u.rmu.Lock()
		if us.coal != nil {
			us.coal.Flush()
			us.coal = nil
			us.run.Release()
			us.run = nil
		}
		u.rmu.Unlock()
		st, changes, _ := us.path.State()
		se.srv.log.Info("UDP channel closed", "hub", se.hs.name, "user", se.user, "path", st.String(), "pathChanges", changes,
			"rxDatagrams", us.rx.Load(), "rxRejected", us.rxBad.Load(), "rxReplayed", us.rxReplay.Load(),
			"txDatagrams", us.tx.Load(), "txErrors", us.txErr.Load(), "pmtu", us.path.Size())
	}
}

// probe sends what the path asks for: liveness probes and size probes, to the
// client's address once a datagram of its has authenticated.
func (us *udpSession) probe(ctx context.Context) {
	us.probeBuf = make([]byte, datagram.MaxDatagram)
	log := us.se.srv.log.With("hub", us.se.hs.name, "user", us.se.user)
	t := time.NewTimer(us.path.NextTick())
	defer t.Stop()
	var probes [2]datagram.Probe
	var lastChanges uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		n := us.path.Tick(now, &probes)
		if peer := us.peer.Load(); peer != nil {
			for _, pr := range probes[:n] {
				if d, err := us.sealer.SealProbe(us.probeBuf, pr.ID, pr.Size); err == nil {
					us.send(*peer, d)
				}
			}
		}
		if st, changes, _ := us.path.State(); changes != lastChanges {
			lastChanges = changes
			log.Info("UDP path "+st.String(), "peer", us.peerString(), "pmtu", us.path.Size())
		}
		t.Reset(us.path.NextTick())
	}
}

func (us *udpSession) peerString() string {
	if p := us.peer.Load(); p != nil {
		return us.peerStringOf(p)
	}
	return ""
}

func (us *udpSession) send(to udpDest, d []byte) {
	one := [1][]byte{d}
	us.sendBatch(to, one[:])
}

// sendBatch sends ds to the client: from this member's socket, or over the
// mesh from the member its datagrams came through.
func (us *udpSession) sendBatch(to udpDest, ds [][]byte) {
	var err error
	if to.via == "" {
		err = us.u.conn.WriteBatch(to.addr, ds)
	} else {
		err = us.u.fwd.Send(to.via, true, to.addr, ds)
	}
	if err != nil {
		us.txErr.Add(uint64(len(ds)))
		us.u.txErr.Add(uint64(len(ds)))
		return
	}
	us.tx.Add(uint64(len(ds)))
	us.u.tx.Add(uint64(len(ds)))
}

// newSessionID picks a datagram session ID not in use here. In cluster mode
// its first four bytes are this member's tag, so a member that receives the
// session's datagrams knows where to forward them.
func (u *udpServer) newSessionID() datagram.SessionID {
	var id datagram.SessionID
	for {
		rand.Read(id[:])
		if u.fwd != nil {
			binary.BigEndian.PutUint32(id[:4], u.fwd.Tag())
		}
		u.mu.RLock()
		_, taken := u.byID[id]
		u.mu.RUnlock()
		if !taken {
			return id
		}
	}
}

// forward hands frames to the hub, one goroutine at a time.
func (se *session) forward(frames []*hub.Frame) {
	if us := se.udp; us != nil {
		us.fwd.Lock()
		defer us.fwd.Unlock()
	}
	se.port.Forward(frames)
}

// write sends a batch the hub queued for this session: by UDP while the path
// is up (frames too long for it by TLS), by TLS otherwise.
func (se *session) write(frames [][]byte, metas []gso.Meta) error {
	us := se.udp
	if us == nil || !us.path.Up() || us.peer.Load() == nil {
		return se.conn.WriteFramesGSO(frames, metas)
	}
	_ = us.packer.Pack(us.path.Size(), frames, metas, us.onBig)
	var err error
	if len(us.tooBig) > 0 {
		for _, i := range us.tooBig {
			us.tlsF = append(us.tlsF, frames[i])
			if metas != nil {
				us.tlsM = append(us.tlsM, metas[i])
			} else {
				us.tlsM = append(us.tlsM, gso.Meta{})
			}
		}
		err = se.conn.WriteFramesGSO(us.tlsF, us.tlsM)
		clear(us.tlsF)
		us.tlsF, us.tlsM, us.tooBig = us.tlsF[:0], us.tlsM[:0], us.tooBig[:0]
	}
	return err
}

func (us *udpSession) addTooBig(i int) { us.tooBig = append(us.tooBig, i) }

// flushDatagrams is the Packer's Flush: a lost batch is a lost batch (the
// path prober notices a path that stopped working), never a session error.
func (us *udpSession) flushDatagrams(ds [][]byte) error {
	if p := us.peer.Load(); p != nil {
		us.sendBatch(*p, ds)
	}
	return nil
}
