// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

const (
	// offerHold keeps an offered address for the client's REQUEST.
	offerHold = 30 * time.Second
	// conflictHold quarantines an address a host answered a probe for, or a
	// client declined: long enough not to probe it again at every DISCOVER,
	// short enough that a host that left frees it the same hour.
	conflictHold = 10 * time.Minute
	// maxProbes bounds the probes in flight, so a flood of DISCOVERs with
	// made-up MACs costs bounded memory; the excess is ignored and retried
	// by the clients.
	maxProbes = 256
	// maxTries bounds the addresses probed for one DISCOVER: a segment full
	// of static hosts must not turn one DISCOVER into a sweep of the pool.
	maxTries = 8
)

// Stats describe a server's pool and what it did.
type Stats struct {
	PoolSize    int // addresses the pool leases
	InUse       int // bound, unexpired leases
	Quarantined int // addresses declined or found in use by a probe
	Offers      uint64
	Acks        uint64
	Naks        uint64
	Conflicts   uint64 // probes a host answered, and DECLINEs
	Learned     uint64 // renewals of addresses the server had no record of, accepted after a probe
}

// Server answers DHCP on one Ethernet segment. It is a state machine with
// no goroutine, socket or clock of its own: the caller feeds it the frames
// that reach the server (Handle), calls Tick by the deadline it returns, and
// gives it a function that puts a frame on the segment. That keeps it
// testable frame by frame and leaves the choice of port to the caller
// (a hub port in the member).
//
// Its methods may be called from several goroutines.
type Server struct {
	cfg  *Config
	send func(frame []byte) // the frame is only valid during the call
	log  *slog.Logger

	mu     sync.Mutex
	pool   *Pool
	probes map[netip.Addr]*probe
	buf    []byte
	stats  Stats
}

// probe is an ARP probe in flight for an address about to be offered
// (DISCOVER) or acknowledged to a client the server has no record of
// (a renewal after a move).
type probe struct {
	addr     netip.Addr
	key      string
	mac      [6]byte
	req      *Message
	deadline time.Time
	ack      bool // acknowledge on success (a REQUEST), else offer
	tried    []netip.Addr
}

// NewServer returns a server for c. send puts a frame on the segment; it is
// called with the server's lock held and must not call back into it.
func NewServer(c *Config, send func(frame []byte), log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: c, send: send, log: log, pool: NewPool(c), probes: map[netip.Addr]*probe{}}
}

// Stats returns the pool's use and the server's counters.
func (s *Server) Stats(now time.Time) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.PoolSize, st.InUse, st.Quarantined = s.pool.Size(), s.pool.InUse(now), s.pool.Blocked(now)
	return st
}

// Lease returns the lease of the client with this identifier and MAC, if any.
func (s *Server) Lease(clientID []byte, mac [6]byte) (Lease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.pool.Lookup(ClientKey(clientID, mac)); l != nil {
		return *l, true
	}
	return Lease{}, false
}

// Announce sends a gratuitous ARP for the server's address: the switch
// learns the server's port, and hosts refresh their ARP caches after the
// server moved to another member.
func (s *Server) Announce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip := s.cfg.ServerIP()
	s.emit(AppendARP(s.buf[:0], ARP{EthDst: Broadcast, EthSrc: s.cfg.ServerMAC, Op: ARPRequest,
		SenderMAC: s.cfg.ServerMAC, SenderIP: ip, TargetIP: ip}))
}

func (s *Server) emit(frame []byte) {
	s.buf = frame[:0]
	s.send(frame)
}

// Wants reports cheaply whether a frame may concern the server (ARP, or
// UDP to the server port), so the caller can skip the rest of a hub's
// broadcast traffic without locking.
func Wants(f []byte) bool {
	if len(f) < ethLen+ipLen+udpLen {
		return len(f) >= ethLen+arpLen && f[12] == 0x08 && f[13] == 0x06
	}
	switch {
	case f[12] == 0x08 && f[13] == 0x06:
		return true
	case f[12] == 0x08 && f[13] == 0x00:
		ihl := int(f[ethLen]&0x0f) * 4
		return f[ethLen+9] == protoUDP && len(f) >= ethLen+ihl+udpLen &&
			f[ethLen+ihl+2] == 0 && f[ethLen+ihl+3] == ServerPort
	}
	return false
}

// Handle processes one frame that reached the server's port.
func (s *Server) Handle(f []byte, now time.Time) {
	if a, ok := ParseARP(f); ok {
		s.mu.Lock()
		s.arp(a, now)
		s.mu.Unlock()
		return
	}
	u, ok := ParseUDP(f)
	if !ok || u.DstPort != ServerPort || (u.DstMAC != Broadcast && u.DstMAC != s.cfg.ServerMAC) {
		return
	}
	if u.DstIP != IPBroadcast && u.DstIP != s.cfg.ServerIP() {
		return
	}
	m, err := Parse(u.Payload)
	if err != nil || m.Op != OpRequest {
		return
	}
	if m.GIAddr.IsValid() && !m.GIAddr.IsUnspecified() {
		return // relayed: a hub is one segment, so a relay means another network's client
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ClientKey(m.ClientID, m.CHAddr)
	switch m.Type {
	case Discover:
		s.discover(m, key, now, nil)
	case Request:
		s.request(m, key, now)
	case Decline:
		if l := s.pool.Lookup(key); l != nil && l.Addr == m.RequestedIP && (!m.ServerID.IsValid() || m.ServerID == s.cfg.ServerIP()) {
			s.pool.Block(l.Addr, now.Add(conflictHold))
			s.stats.Conflicts++
			s.log.Warn("dhcp: a client declined its address: another host uses it; quarantined", "addr", l.Addr, "for", conflictHold)
		}
	case Release:
		if m.CIAddr.IsValid() {
			s.pool.Release(key, m.CIAddr)
		}
	case Inform:
		if m.CIAddr.IsValid() && !m.CIAddr.IsUnspecified() {
			s.reply(m, Ack, netip.Addr{}, "")
		}
	}
}

func (s *Server) arp(a ARP, now time.Time) {
	ip := s.cfg.ServerIP()
	if a.Op == ARPRequest && a.TargetIP == ip && a.SenderIP != ip {
		s.emit(AppendARP(s.buf[:0], ARP{EthDst: a.SenderMAC, EthSrc: s.cfg.ServerMAC, Op: ARPReply,
			SenderMAC: s.cfg.ServerMAC, SenderIP: ip, TargetMAC: a.SenderMAC, TargetIP: a.SenderIP}))
	}
	if a.SenderMAC == s.cfg.ServerMAC {
		return
	}
	// A host that has the address answers (ARP reply); one that is itself
	// probing for it (RFC 5227: sender 0.0.0.0, target the address) is about
	// to take it. Either way it is not free, unless that host is the client
	// the server is asking for: it may hold the address already.
	held := a.SenderIP
	if a.SenderIP.IsUnspecified() && a.Op == ARPRequest {
		held = a.TargetIP
	}
	p := s.probes[held]
	if p == nil {
		return
	}
	if a.SenderMAC == p.mac {
		if !a.SenderIP.IsUnspecified() {
			s.finish(p, now)
		}
		return
	}
	delete(s.probes, p.addr)
	s.pool.Block(p.addr, now.Add(conflictHold))
	s.stats.Conflicts++
	s.log.Info("dhcp: address answered an ARP probe; not handed out", "addr", p.addr, "host", macString(a.SenderMAC), "quarantine", conflictHold)
	if p.ack {
		s.nak(p.req, "address in use by another host")
		return
	}
	s.discover(p.req, p.key, now, append(p.tried, p.addr))
}

// discover picks an address for a DISCOVER and probes it.
func (s *Server) discover(m *Message, key string, now time.Time, tried []netip.Addr) {
	for _, p := range s.probes {
		if p.key == key {
			p.req = m // a retransmission: answer the latest transaction
			return
		}
	}
	if len(tried) >= maxTries {
		s.log.Warn("dhcp: every address probed for a client is in use by another host", "tried", len(tried), "client", macString(m.CHAddr))
		return
	}
	avoid := func(a netip.Addr) bool { return s.probes[a] != nil }
	a, err := s.pool.Pick(key, m.RequestedIP, now, avoid)
	if err != nil {
		s.log.Warn("dhcp: pool exhausted; a client gets no address", "client", macString(m.CHAddr), "size", s.pool.Size())
		return
	}
	if l := s.pool.Lookup(key); l != nil && l.Bound && l.Addr == a && now.Before(l.Expiry) {
		// The client's own lease: no other host can have been given it.
		s.offer(m, a, now)
		return
	}
	s.startProbe(&probe{addr: a, key: key, mac: m.CHAddr, req: m, tried: tried}, now)
}

func (s *Server) startProbe(p *probe, now time.Time) {
	if len(s.probes) >= maxProbes {
		return
	}
	if err := s.pool.Hold(p.key, p.mac, p.addr, now, offerHold); err != nil {
		return
	}
	p.deadline = now.Add(s.cfg.ProbeTimeout)
	s.probes[p.addr] = p
	s.emit(AppendARP(s.buf[:0], ARP{EthDst: Broadcast, EthSrc: s.cfg.ServerMAC, Op: ARPRequest,
		SenderMAC: s.cfg.ServerMAC, SenderIP: IPUnspecified, TargetIP: p.addr}))
}

// finish completes a probe nobody else answered.
func (s *Server) finish(p *probe, now time.Time) {
	delete(s.probes, p.addr)
	if !p.ack {
		s.offer(p.req, p.addr, now)
		return
	}
	if _, err := s.pool.Bind(p.key, p.mac, p.addr, now); err != nil {
		s.nak(p.req, err.Error())
		return
	}
	s.stats.Learned++
	s.log.Info("dhcp: renewal of an address this server had no record of accepted after a probe", "addr", p.addr, "client", macString(p.mac))
	s.reply(p.req, Ack, p.addr, "")
}

func (s *Server) offer(m *Message, a netip.Addr, now time.Time) {
	if s.pool.Hold(ClientKey(m.ClientID, m.CHAddr), m.CHAddr, a, now, offerHold) != nil {
		return
	}
	s.reply(m, Offer, a, "")
}

// Tick completes the probes whose time is up and returns when it wants to
// be called next (zero: no probe in flight).
func (s *Server) Tick(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, p := range s.probes {
		if !now.Before(p.deadline) {
			s.finish(p, now)
		}
	}
	for _, p := range s.probes {
		if next.IsZero() || p.deadline.Before(next) {
			next = p.deadline
		}
	}
	return next
}

func (s *Server) request(m *Message, key string, now time.Time) {
	if m.ServerID.IsValid() { // SELECTING: the answer to an OFFER
		if m.ServerID != s.cfg.ServerIP() {
			if l := s.pool.Lookup(key); l != nil && !l.Bound {
				s.pool.Release(key, l.Addr) // it chose another server's offer
			}
			return
		}
		a := m.RequestedIP
		if !a.IsValid() {
			a = m.CIAddr
		}
		if _, err := s.pool.Bind(key, m.CHAddr, a, now); err != nil {
			s.nak(m, err.Error())
			return
		}
		s.reply(m, Ack, a, "")
		return
	}
	// INIT-REBOOT (requested IP) or RENEWING/REBINDING (ciaddr): the client
	// has an address and wants to keep it.
	a := m.RequestedIP
	if !a.IsValid() {
		a = m.CIAddr
	}
	if !a.IsValid() || a.IsUnspecified() {
		return
	}
	if !s.cfg.Prefix.Contains(a) {
		s.nak(m, "address is not on this network")
		return
	}
	if err := s.pool.check(key, a, now); err != nil {
		s.nak(m, err.Error())
		return
	}
	if l := s.pool.Lookup(key); l != nil && l.Addr == a && l.Bound {
		s.pool.Bind(key, m.CHAddr, a, now)
		s.reply(m, Ack, a, "")
		return
	}
	for _, p := range s.probes {
		if p.key == key {
			p.req = m
			return
		}
	}
	// Unknown here, free here: the server that leased it is gone (the hub
	// moved, or this member restarted). Take the lease over once a probe
	// shows no other host has the address.
	s.startProbe(&probe{addr: a, key: key, mac: m.CHAddr, req: m, ack: true}, now)
}

func (s *Server) nak(m *Message, why string) { s.reply(m, Nak, netip.Addr{}, why) }

// reply answers m, addressed as RFC 2131 4.1 says for a segment without
// relays.
func (s *Server) reply(m *Message, t MessageType, yiaddr netip.Addr, why string) {
	r := Message{
		Op: OpReply, XID: m.XID, Flags: m.Flags, CHAddr: m.CHAddr,
		Type: t, ServerID: s.cfg.ServerIP(), ClientID: m.ClientID,
		CIAddr: IPUnspecified, YIAddr: IPUnspecified, SIAddr: IPUnspecified, GIAddr: IPUnspecified,
	}
	switch t {
	case Nak:
		r.Text = why
		s.stats.Naks++
	default:
		if yiaddr.IsValid() {
			r.YIAddr = yiaddr
			r.LeaseTime, r.T1, r.T2 = s.cfg.Lease, s.cfg.Lease/2, s.cfg.Lease*7/8
		}
		if m.CIAddr.IsValid() {
			r.CIAddr = m.CIAddr
		}
		r.SubnetMask = maskOf(s.cfg.Prefix)
		if s.cfg.Router.IsValid() {
			r.Routers = []netip.Addr{s.cfg.Router}
		}
		r.DNS = s.cfg.DNS
		if t == Offer {
			s.stats.Offers++
		} else {
			s.stats.Acks++
		}
	}
	dstMAC, dstIP := m.CHAddr, yiaddr
	switch {
	case t == Nak:
		dstMAC, dstIP = Broadcast, IPBroadcast
	case m.CIAddr.IsValid() && !m.CIAddr.IsUnspecified():
		dstIP = m.CIAddr
	case m.Flags&FlagBroadcast != 0 || !yiaddr.IsValid():
		dstMAC, dstIP = Broadcast, IPBroadcast
	}
	payload := r.Append(nil)
	s.emit(AppendUDP(s.buf[:0], UDP{
		SrcMAC: s.cfg.ServerMAC, DstMAC: dstMAC, SrcIP: s.cfg.ServerIP(), DstIP: dstIP,
		SrcPort: ServerPort, DstPort: ClientPort, Payload: payload,
	}))
}

func maskOf(p netip.Prefix) netip.Addr {
	return fromU32(^uint32(0) << (32 - p.Bits()))
}

func macString(m [6]byte) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, v := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[v>>4], hex[v&15])
	}
	return string(b)
}
