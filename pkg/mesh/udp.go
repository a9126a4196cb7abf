// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Datagram forwarding (link version 3, issue #14). Behind a Kubernetes
// Service, kube-proxy balances a client's UDP flow apart from its TCP
// connection: its datagrams may reach a member (the entry) other than the one
// holding the session's keys (the owner). The entry reads the owner from the
// datagram's session ID (its first four bytes are the owner's DatagramTag)
// and forwards the datagram, still sealed, over the link to the owner
// (UDPIn); the owner authenticates it and sends its own datagrams for that
// client back through the member the client's last datagram came through
// (UDPOut), which sends them from its UDP socket — the only one whose replies
// kube-proxy's conntrack translates back to the client's flow.
//
// Both messages are
//
//	UDPIn  0x20 | UDPOut 0x21: client address [16] (IPv4 as ::ffff:a.b.c.d),
//	                           port u16, then datagrams: (length u16, bytes)…
//
// on the ordinary link, after the Hellos agreed on version 3; a member never
// sends them on an older link, and a version 2 member, which would close the
// link on an unknown type, never agrees to 3 (the acceptor answers
// min(offered, own)). The entry never decrypts anything: authentication,
// replay protection and the session's path state stay at the owner.

const (
	msgUDPIn  byte = 0x20
	msgUDPOut byte = 0x21

	// udpLinkVersion is the first link version that carries UDPIn/UDPOut.
	udpLinkVersion = 3
	// maxUDPBody bounds a UDPIn/UDPOut body a receiver accepts: 64 jumbo
	// datagrams. udpMsgBody is where a sender ends one, so the receiver
	// parses it in place in its 64 KiB read buffer.
	maxUDPBody = 18 + 64*(2+9216)
	udpMsgBody = 60 << 10
	// udpQueue is how many messages wait for a link's datagram writer before
	// more are dropped (UDP semantics: a slow link loses datagrams, it never
	// holds up the UDP reader or a session's writer).
	udpQueue = 256
)

// ErrNoDatagramLink: no link to the peer, or one older than version 3.
var ErrNoDatagramLink = errors.New("mesh: no link to the peer that carries datagrams")

// DatagramTag is the 32-bit tag of a member's name (FNV-1a) that a member
// puts in the first four bytes of the datagram session IDs it assigns, so
// every other member can tell the owner of a datagram from its header.
func DatagramTag(member string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(member))
	return h.Sum32()
}

// DatagramHandler gets the datagrams a peer forwarded: toClient false, the
// datagrams the peer received from client addr for sessions of this member;
// toClient true, datagrams this member is to send to addr from its own UDP
// socket. It runs on the link's reader goroutine; ds are valid only during
// the call.
type DatagramHandler func(peer string, toClient bool, addr netip.AddrPort, ds [][]byte)

// OnDatagrams sets the handler of forwarded datagrams; without one they are
// dropped.
func (m *Mesh) OnDatagrams(fn DatagramHandler) { m.onDatagrams.Store(&fn) }

// DatagramOwner is the peer whose tag is tag, among the current peers.
func (m *Mesh) DatagramOwner(tag uint32) (string, bool) {
	t := m.tags.Load()
	if t == nil {
		return "", false
	}
	name, ok := (*t)[tag]
	return name, ok
}

// publishTagsLocked republishes the tag → peer map (m.mu held).
func (m *Mesh) publishTagsLocked() {
	t := make(map[uint32]string, len(m.peers))
	for name := range m.peers {
		tag := DatagramTag(name)
		if other, dup := t[tag]; dup {
			// Two names with one tag: neither can be told apart, so
			// datagrams for either are not forwarded (they stay on TLS).
			m.log.Warn("two members share a datagram tag; datagrams for their sessions are not forwarded", "a", other, "b", name)
			t[tag] = ""
			continue
		}
		t[tag] = name
	}
	for tag, name := range t {
		if name == "" {
			delete(t, tag)
		}
	}
	m.tags.Store(&t)
}

// SendDatagrams forwards ds (sealed datagrams of the client at addr) to peer:
// toClient false to the session's owner, true to the member that sends them
// to the client. The datagrams are copied before it returns; they are queued
// for the link's datagram writer, and dropped (counted) if it is behind.
func (m *Mesh) SendDatagrams(peer string, toClient bool, addr netip.AddrPort, ds [][]byte) error {
	if len(ds) == 0 {
		return nil
	}
	lp := m.udpLinks.Load()
	var l *link
	if lp != nil {
		l = (*lp)[peer]
	}
	if l == nil {
		return ErrNoDatagramLink
	}
	typ := msgUDPIn
	if toClient {
		typ = msgUDPOut
	}
	for len(ds) > 0 {
		bp := udpPool.Get().(*[]byte)
		b := (*bp)[:0]
		b = append(b, typ, 0, 0, 0)
		a16 := addr.Addr().As16()
		b = append(b, a16[:]...)
		b = binary.BigEndian.AppendUint16(b, addr.Port())
		n := 0
		for _, d := range ds {
			if len(b)-headerLen+2+len(d) > udpMsgBody {
				break
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
			b = append(b, d...)
			n++
		}
		if n == 0 { // a datagram no message can carry; the codec never makes one
			udpPool.Put(bp)
			return fmt.Errorf("mesh: a %d-byte datagram cannot be forwarded", len(ds[0]))
		}
		ds = ds[n:]
		putHeader(b, typ, len(b)-headerLen)
		*bp = b
		select {
		case l.udpq <- bp:
			m.udpSent.Add(uint64(n))
		default:
			udpPool.Put(bp)
			m.udpDropped.Add(uint64(n))
		}
	}
	return nil
}

// DatagramStats are the datagrams forwarded over all links since start.
type DatagramStats struct {
	Sent, Dropped, Received uint64
}

// DatagramStats sums the forwarding counters.
func (m *Mesh) DatagramStats() DatagramStats {
	return DatagramStats{Sent: m.udpSent.Load(), Dropped: m.udpDropped.Load(), Received: m.udpReceived.Load()}
}

var udpPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 64<<10)
	return &b
}}

// udpLinkState is a version 3 link's datagram state.
type udpLinkState struct {
	udpq       chan *[]byte // nil below version 3
	udpScratch [][]byte     // the reader's
}

// udpMeshState is the mesh's datagram state.
type udpMeshState struct {
	onDatagrams                      atomic.Pointer[DatagramHandler]
	tags                             atomic.Pointer[map[uint32]string]
	udpLinks                         atomic.Pointer[map[string]*link]
	udpSent, udpDropped, udpReceived atomic.Uint64
}

// publishUDPLinksLocked republishes the version 3 links for SendDatagrams'
// lock-free lookup (m.mu held).
func (m *Mesh) publishUDPLinksLocked() {
	cp := make(map[string]*link, len(m.links))
	for name, l := range m.links {
		if l.version >= udpLinkVersion {
			cp[name] = l
		}
	}
	m.udpLinks.Store(&cp)
}

// udpWriter writes the queued datagram messages, several to one write when
// they accumulated, until the link ends.
func (l *link) udpWriter() {
	var out []byte
	var held []*[]byte
	for {
		select {
		case <-l.ctx.Done():
			for {
				select {
				case bp := <-l.udpq:
					udpPool.Put(bp)
				default:
					return
				}
			}
		case bp := <-l.udpq:
			held = append(held[:0], bp)
			out = append(out[:0], *bp...)
		more:
			for len(out) < pumpBatchBody {
				select {
				case bp := <-l.udpq:
					held = append(held, bp)
					out = append(out, *bp...)
				default:
					break more
				}
			}
			for _, bp := range held {
				udpPool.Put(bp)
			}
			clear(held)
			if err := l.write(out); err != nil {
				l.close(err)
				return
			}
		}
	}
}

// readUDP parses a UDPIn/UDPOut body and hands it to the handler.
func (l *link) readUDP(typ byte, body []byte) error {
	if l.version < udpLinkVersion {
		return fmt.Errorf("peer %s sent datagrams on a version %d link", l.peer, l.version)
	}
	if len(body) < 18 {
		return fmt.Errorf("peer %s sent a malformed datagram message", l.peer)
	}
	var a16 [16]byte
	copy(a16[:], body)
	addr := netip.AddrPortFrom(netip.AddrFrom16(a16).Unmap(), binary.BigEndian.Uint16(body[16:]))
	ds := l.udpScratch[:0]
	for b := body[18:]; len(b) > 0; {
		if len(b) < 2 {
			return fmt.Errorf("peer %s sent a malformed datagram message", l.peer)
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return fmt.Errorf("peer %s sent a malformed datagram message", l.peer)
		}
		ds = append(ds, b[2:2+n])
		b = b[2+n:]
	}
	l.udpScratch = ds
	l.m.udpReceived.Add(uint64(len(ds)))
	if fn := l.m.onDatagrams.Load(); fn != nil && len(ds) > 0 {
		(*fn)(l.peer, typ == msgUDPOut, addr, ds)
	}
	clear(ds)
	return nil
}
