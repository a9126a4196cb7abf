// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// The UDP data channel's receive side: datagrams from the member's socket
// or forwarded by an entry member over the mesh, opened, checked and turned
// into hub frames (TCP segments of one flow joined back into super-frames
// first), and datagrams for sessions owned elsewhere forwarded to their
// owner. The channel's setup and send side are in udp.go.

// onLocalDatagram is a datagram read from this member's socket: one of its
// own sessions', or, in cluster mode, one for another member to forward.
func (u *udpServer) onLocalDatagram(d []byte, from netip.AddrPort) {
	u.rmu.Lock()
	done := u.onDatagram(d, from, "", u.fwd != nil)
	u.rmu.Unlock()
	if !done {
		u.queueForward(d, from)
	}
}

// queueForward adds a datagram for another member's session to the read's
// pending groups (d stays valid until the read returns, when they are sent).
func (u *udpServer) queueForward(d []byte, from netip.AddrPort) {
	h, err := datagram.ParseHeader(d)
	if err != nil {
		u.malformed.Add(1)
		return
	}
	tag := binary.BigEndian.Uint32(h.Session[:4])
	owner, ok := u.fwd.Owner(tag)
	if !ok || tag == u.fwd.Tag() {
		u.unknown.Add(1)
		return
	}
	for i := range u.pending {
		if g := &u.pending[i]; g.owner == owner && g.from == from {
			g.ds = append(g.ds, d)
			return
		}
	}
	u.pending = append(u.pending, fwdGroup{owner: owner, from: from, ds: append([][]byte(nil), d)})
}

// forwardPending sends the read's datagrams for other members' sessions, in
// the UDP reader after its read.
func (u *udpServer) forwardPending() {
	for i := range u.pending {
		g := &u.pending[i]
		if err := u.fwd.Send(g.owner, false, g.from, g.ds); err != nil {
			u.fwdErr.Add(uint64(len(g.ds)))
		} else {
			u.fwdToOwner.Add(uint64(len(g.ds)))
		}
		clear(g.ds)
	}
	if len(u.pending) > 0 {
		// Keep the groups' slices for the next read when there are few.
		if len(u.pending) > 16 {
			u.pending = nil
		} else {
			u.pending = u.pending[:0]
		}
	}
}

// ForwardedDatagrams takes datagrams another member of the cluster forwarded
// (cluster mode: pkg/mesh's handler). toClient false: the client at addr sent
// them to member via, for sessions of this member; they are authenticated
// here and answered through via. toClient true: this member sends them to
// addr from its UDP socket for a session of via's. Never forwarded again.
func (s *Server) ForwardedDatagrams(via string, toClient bool, addr netip.AddrPort, ds [][]byte) {
	u := s.udp.Load()
	if u == nil {
		return
	}
	if toClient {
		if err := u.conn.WriteBatch(addr, ds); err != nil {
			u.txErr.Add(uint64(len(ds)))
			return
		}
		u.fwdToClient.Add(uint64(len(ds)))
		return
	}
	u.rmu.Lock()
	for _, d := range ds {
		u.onDatagram(d, addr, via, false)
	}
	u.flush()
	u.rmu.Unlock()
}

// onDatagram authenticates one datagram that the client at from sent through
// member via ("" this one) and acts on it (rmu held). With forwarding, a
// datagram of no session of this member's is left to the caller (false).
func (u *udpServer) onDatagram(d []byte, from netip.AddrPort, via string, forwarding bool) bool {
	h, err := datagram.ParseHeader(d)
	if err != nil {
		u.malformed.Add(1)
		return true
	}
	u.mu.RLock()
	us := u.byID[h.Session]
	u.mu.RUnlock()
	if us == nil {
		if forwarding {
			return false
		}
		u.unknown.Add(1)
		return true
	}
	_, payload, err := us.opener.Open(d)
	if err != nil {
		if errors.Is(err, datagram.ErrReplay) {
			us.rxReplay.Add(1)
			u.rxReplay.Add(1)
		} else {
			us.rxBad.Add(1)
			u.rxBad.Add(1)
		}
		return true
	}
	us.rx.Add(1)
	u.rx.Add(1)
	// The client may have moved (NAT rebinding, roaming, or kube-proxy
	// now sends its flow to another member): only a datagram that
	// authenticated, and is no replay, moves the session to its source.
	now := udpDest{addr: from, via: via}
	if p := us.peer.Load(); p == nil || *p != now {
		moved := now // a copy, so only a move allocates
		us.peer.Store(&moved)
		if p != nil {
			us.se.srv.log.Info("UDP peer address changed", "hub", us.se.hs.name, "user", us.se.user, "from", us.peerStringOf(p), "to", us.peerStringOf(&moved))
		}
	}
	switch h.Type {
	case datagram.TypeData:
		if !us.touched {
			us.touched = true
			u.touched = append(u.touched, us)
		}
		if _, _, err := datagram.Unpack(payload, us.lim, us.keep); err != nil {
			u.malformed.Add(1)
		}
		if len(us.in) >= batchFrames {
			us.forward()
		}
	case datagram.TypeProbe:
		if id, ok := datagram.ParseProbe(payload); ok {
			if a, err := us.sealer.SealProbeAck(u.ackBuf, id, len(d)); err == nil {
				us.send(now, a)
			}
		}
	case datagram.TypeProbeAck:
		if id, size, ok := datagram.ParseProbeAck(payload); ok {
			us.path.OnAck(time.Now(), id, size)
		}
	}
	return true
}

func (us *udpSession) peerStringOf(p *udpDest) string {
	if p.via != "" {
		return p.addr.String() + " via " + p.via
	}
	return p.addr.String()
}

// keep takes a received frame: into the Coalescer's run, or copied into a
// hub frame of its own, as the TLS reader does.
func (us *udpSession) keep(b []byte, m gso.Meta) {
	if us.coal != nil {
		us.coal.Add(b, m)
		return
	}
	us.keepCopy(b, m)
}

func (us *udpSession) keepCopy(b []byte, m gso.Meta) {
	f := hub.NewFrameSize(len(b))
	f.SetLen(copy(f.Buf(), b))
	f.Meta = m
	us.in = append(us.in, f)
}

// emit is the Coalescer's: a long run is handed to the hub in the frame it
// was built in, which a new one replaces; a short run (the mean at a
// 1500-byte MTU is about 8 segments) or a run of one is copied into a
// frame of its size, as is any other frame: a queued frame pins its whole
// buffer, and a port's queue holds QueueBytes of them.
func (us *udpSession) emit(b []byte, m gso.Meta) {
	if m.Segmented() {
		us.u.joined.Add(uint64((len(b) - int(m.HdrLen) + int(m.Size) - 1) / int(m.Size)))
		us.u.built.Add(1)
	}
	if len(b) <= hub.MediumFrameCap-hub.Headroom || &b[0] != &us.run.Buf()[0] {
		us.keepCopy(b, m)
		return
	}
	us.run.SetLen(len(b))
	us.run.Meta = m
	us.in = append(us.in, us.run)
	us.run = hub.NewFrameSize(protocol.MaxSuperFrame)
	us.coal.SetBuf(us.run.Buf()[:protocol.MaxSuperFrame])
}

func (us *udpSession) forward() {
	if us.coal != nil {
		us.coal.Flush()
	}
	if len(us.in) > 0 {
		us.se.forward(us.in)
		clear(us.in)
		us.in = us.in[:0]
	}
}

// flush forwards what one read brought, per session.
func (u *udpServer) flush() {
	for _, us := range u.touched {
		us.forward()
		us.touched = false
	}
	clear(u.touched)
	u.touched = u.touched[:0]
}
