// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	macA = [6]byte{2, 0, 0, 0, 0, 0xa}
	macB = [6]byte{2, 0, 0, 0, 0, 0xb}
	macS = [6]byte{2, 0, 0, 0, 0, 0x5} // a static host
	t0   = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func testConfig(t *testing.T, start, end string) *Config {
	t.Helper()
	c, err := Settings{Prefix: "10.8.0.0/24", RangeStart: start, RangeEnd: end, Router: "10.8.0.1",
		DNSServers: []string{"10.8.0.1", "9.9.9.9"}, LeaseSeconds: 600}.Config()
	if err != nil {
		t.Fatal(err)
	}
	c.ServerMAC = MACFor("blue")
	return c
}

func TestMessageRoundTrip(t *testing.T) {
	for _, typ := range []MessageType{Discover, Offer, Request, Decline, Ack, Nak, Release, Inform} {
		m := &Message{
			Op: OpReply, XID: 0xdeadbeef, Secs: 3, Flags: FlagBroadcast,
			CIAddr: ip("10.8.0.5"), YIAddr: ip("10.8.0.6"), SIAddr: ip("10.8.0.7"), GIAddr: ip("0.0.0.0"),
			CHAddr: macA, Type: typ, SubnetMask: ip("255.255.255.0"),
			Routers: []netip.Addr{ip("10.8.0.1")}, DNS: []netip.Addr{ip("10.8.0.1"), ip("9.9.9.9")},
			LeaseTime: time.Hour, T1: 30 * time.Minute, T2: 52 * time.Minute,
			ServerID: ip("10.8.0.10"), RequestedIP: ip("10.8.0.6"),
			ClientID: []byte{1, 2, 0, 0, 0, 0, 0xa}, ParamList: []byte{1, 3, 6}, HostName: "a", Text: "why", MaxSize: 1500,
		}
		b := m.Append(nil)
		if len(b) < minLen {
			t.Fatalf("%v: %d bytes, want at least %d", typ, len(b), minLen)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%v: round trip\n got %+v\nwant %+v", typ, got, m)
		}
		if typ.String() == "" || strings.HasPrefix(typ.String(), "type") {
			t.Fatalf("no name for %d", typ)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good := (&Message{Op: OpRequest, Type: Discover, CHAddr: macA}).Append(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"short":     {good[:239], ErrShort},
		"cookie":    {mut(func(b []byte) []byte { b[236] = 0; return b }), ErrCookie},
		"hardware":  {mut(func(b []byte) []byte { b[2] = 16; return b }), ErrHardware},
		"truncated": {mut(func(b []byte) []byte { return append(b[:240], optRouter, 8, 1, 2, 3) }), ErrOption},
		"bad len":   {mut(func(b []byte) []byte { return append(b[:240], optServerID, 3, 1, 2, 3, optEnd) }), ErrOption},
		"no type":   {mut(func(b []byte) []byte { return append(b[:240], optEnd) }), ErrNoType},
		"overload":  {mut(func(b []byte) []byte { return append(b[:240], optMsgType, 1, 1, optOverload, 1, 3, optEnd) }), ErrOverload},
	} {
		if _, err := Parse(tc.b); err == nil || !strings.Contains(err.Error(), tc.want.Error()) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
}

// checksumOK verifies the IPv4 header and UDP checksums of a frame as a
// receiver does: the ones' complement sum over each, pseudo-header
// included for UDP, is all ones.
func checksumOK(t *testing.T, f []byte) {
	t.Helper()
	iph := f[ethLen : ethLen+ipLen]
	if fold(sum(iph, 0)) != 0xffff {
		t.Fatal("bad IPv4 header checksum")
	}
	udp := f[ethLen+ipLen:]
	s := sum(iph[12:20], 0) + protoUDP + uint32(len(udp))
	if fold(sum(udp, s)) != 0xffff {
		t.Fatal("bad UDP checksum")
	}
}

func TestUDPFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 300, 301} {
		u := UDP{SrcMAC: macA, DstMAC: Broadcast, SrcIP: IPUnspecified, DstIP: IPBroadcast, SrcPort: 68, DstPort: 67, Payload: make([]byte, n)}
		for i := range u.Payload {
			u.Payload[i] = byte(i * 7)
		}
		f := AppendUDP(nil, u)
		checksumOK(t, f)
		got, ok := ParseUDP(f)
		if !ok || !reflect.DeepEqual(got, u) && !(n == 0 && len(got.Payload) == 0) {
			t.Fatalf("%d-byte payload: got %+v ok=%v", n, got, ok)
		}
		// A fragment is not a datagram this package can read.
		f[ethLen+6] = 0x20
		if _, ok := ParseUDP(f); ok {
			t.Fatal("parsed a first fragment")
		}
	}
	a := ARP{EthSrc: macA, EthDst: Broadcast, Op: ARPRequest, SenderMAC: macA, SenderIP: IPUnspecified, TargetIP: ip("10.8.0.20")}
	got, ok := ParseARP(AppendARP(nil, a))
	if !ok || got != a {
		t.Fatalf("ARP round trip: %+v ok=%v", got, ok)
	}
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	ok := Settings{Prefix: "10.8.0.0/24", RangeStart: "10.8.0.10", RangeEnd: "10.8.0.200"}
	for _, tc := range []struct {
		mod  func(*Settings)
		want string
	}{
		{func(s *Settings) { s.Prefix = "10.8.0.1/24" }, "prefix \"10.8.0.1/24\" has address bits set"},
		{func(s *Settings) { s.Prefix = "fd00::/64" }, "prefix \"fd00::/64\" is not an IPv4 prefix"},
		{func(s *Settings) { s.Prefix = "10.8.0.0/31" }, "use /30 or shorter"},
		{func(s *Settings) { s.RangeStart = "10.9.0.10" }, "rangeStart 10.9.0.10 is outside prefix 10.8.0.0/24"},
		{func(s *Settings) { s.RangeEnd = "nope" }, "rangeEnd \"nope\" is not an IPv4 address"},
		{func(s *Settings) { s.RangeStart, s.RangeEnd = "10.8.0.20", "10.8.0.20" }, "rangeStart 10.8.0.20 is not below rangeEnd"},
		{func(s *Settings) { s.RangeEnd = "10.8.0.255" }, "broadcast (10.8.0.255)"},
		{func(s *Settings) { s.Router = "10.8.0.50" }, "router 10.8.0.50 is inside the range"},
		{func(s *Settings) { s.Router = "10.7.0.1" }, "router 10.7.0.1 is outside prefix"},
		{func(s *Settings) { s.DNSServers = []string{"1.1.1.1", "x"} }, "dnsServers[1] \"x\""},
		{func(s *Settings) { s.LeaseSeconds = 5 }, "leaseSeconds 5 is under 10"},
	} {
		s := ok
		tc.mod(&s)
		if _, err := s.Config(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err %v, want %q", err, tc.want)
		}
	}
	c, err := ok.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerIP() != ip("10.8.0.10") || NewPool(c).Size() != 190 || c.Lease != DefaultLease {
		t.Fatalf("server %v size %d lease %v", c.ServerIP(), NewPool(c).Size(), c.Lease)
	}
	if m := MACFor("blue"); m[0]&1 != 0 || m[0]&2 == 0 || m != MACFor("blue") || m == MACFor("red") {
		t.Fatalf("server MAC %x: want a stable, locally administered unicast address per hub", m)
	}
}

func TestPool(t *testing.T) {
	c := testConfig(t, "10.8.0.10", "10.8.0.13") // leases .11 .. .13
	p := NewPool(c)
	ka, kb := ClientKey(nil, macA), ClientKey([]byte{0, 'b'}, macB)
	a, err := p.Pick(ka, netip.Addr{}, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Bind(ka, macA, a, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Bind(kb, macB, a, t0); err != ErrTaken {
		t.Fatalf("a second client bound %v: err %v", a, err)
	}
	b, _ := p.Pick(kb, a, t0, nil) // asks for a's address: refused, gets another
	if b == a {
		t.Fatal("offered a bound address to another client")
	}
	p.Bind(kb, macB, b, t0)
	if p.InUse(t0) != 2 || p.Size() != 3 {
		t.Fatalf("in use %d size %d", p.InUse(t0), p.Size())
	}
	// Expired, a's address stays a's: the third client gets the last free one.
	later := t0.Add(time.Hour)
	kc := ClientKey(nil, macS)
	cAddr, _ := p.Pick(kc, netip.Addr{}, later, nil)
	if cAddr == a || cAddr == b {
		t.Fatalf("took an expired lease (%v) while a never-leased address was free", cAddr)
	}
	if again, _ := p.Pick(ka, netip.Addr{}, later, nil); again != a {
		t.Fatalf("a returned after expiry and was offered %v, not its %v", again, a)
	}
	p.Bind(kc, macS, cAddr, later)
	// Pool full of live leases but a's expired: a fourth client reuses the oldest.
	p.Bind(kb, macB, b, later)
	kd := ClientKey(nil, [6]byte{2, 0, 0, 0, 0, 0xd})
	if d, err := p.Pick(kd, netip.Addr{}, later, nil); err != nil || d != a {
		t.Fatalf("got %v %v, want the expired %v", d, err, a)
	}
	// Decline/quarantine.
	p.Block(cAddr, later.Add(time.Minute))
	if p.Lookup(kc) != nil || p.Free(kd, cAddr, later) {
		t.Fatal("a quarantined address is still leased or free")
	}
	if !p.Free(kd, cAddr, later.Add(2*time.Minute)) {
		t.Fatal("quarantine did not end")
	}
	if _, err := p.Bind(kd, macA, ip("10.8.0.10"), later); err != ErrNotInPool {
		t.Fatalf("bound the server's own address: %v", err)
	}
	// Release frees at once.
	p.Bind(kd, macA, a, later)
	if !p.Release(kd, a) || p.Free(kb, b, later) == false || !p.Free(ka, a, later) {
		t.Fatal("release did not free the address")
	}
}

// segment is a test hub: it collects what the server sends.
type segment struct {
	t   *testing.T
	out [][]byte
}

func (g *segment) send(f []byte) { g.out = append(g.out, append([]byte(nil), f...)) }

func (g *segment) take() [][]byte { o := g.out; g.out = nil; return o }

// client is a DHCP client on the test segment.
type client struct {
	mac  [6]byte
	xid  uint32
	addr netip.Addr
}

func (c *client) frame(typ MessageType, mut func(*Message)) []byte {
	c.xid++
	m := &Message{Op: OpRequest, XID: c.xid, CHAddr: c.mac, Type: typ}
	if mut != nil {
		mut(m)
	}
	return ClientFrame(nil, m, netip.Addr{}, netip.Addr{}, [6]byte{})
}

func (c *client) reply(t *testing.T, frames [][]byte) *Message {
	t.Helper()
	for _, f := range frames {
		if m, _, ok := ParseReply(f, c.mac, c.xid); ok {
			checksumOK(t, f)
			return m
		}
	}
	t.Fatalf("no reply to %x among %d frames", c.mac, len(frames))
	return nil
}

// probes returns the addresses ARP-probed in frames.
func probes(frames [][]byte) []netip.Addr {
	var out []netip.Addr
	for _, f := range frames {
		if a, ok := ParseARP(f); ok && a.Op == ARPRequest && a.SenderIP.IsUnspecified() {
			out = append(out, a.TargetIP)
		}
	}
	return out
}

// dora runs DISCOVER → (probe, no answer) → OFFER → REQUEST → ACK.
func dora(t *testing.T, s *Server, g *segment, c *client, now time.Time) time.Time {
	t.Helper()
	s.Handle(c.frame(Discover, nil), now)
	if p := probes(g.take()); len(p) != 1 {
		t.Fatalf("DISCOVER: %d probes, want 1", len(p))
	}
	if s.Tick(now.Add(time.Millisecond)).IsZero() {
		t.Fatal("offered before the probe timed out")
	}
	now = now.Add(s.cfg.ProbeTimeout)
	if !s.Tick(now).IsZero() {
		t.Fatal("probe still pending after its timeout")
	}
	off := c.reply(t, g.take())
	if off.Type != Offer || off.ServerID != s.cfg.ServerIP() || off.LeaseTime != 10*time.Minute ||
		off.T1 != 5*time.Minute || off.SubnetMask != ip("255.255.255.0") || len(off.Routers) != 1 || len(off.DNS) != 2 {
		t.Fatalf("bad offer %+v", off)
	}
	s.Handle(c.frame(Request, func(m *Message) { m.ServerID, m.RequestedIP = off.ServerID, off.YIAddr }), now)
	ack := c.reply(t, g.take())
	if ack.Type != Ack || ack.YIAddr != off.YIAddr {
		t.Fatalf("want ACK of %v, got %+v", off.YIAddr, ack)
	}
	c.addr = ack.YIAddr
	return now
}

func newTestServer(t *testing.T, start, end string) (*Server, *segment) {
	g := &segment{t: t}
	return NewServer(testConfig(t, start, end), g.send, nil), g
}

func TestServerTwoClientsDistinct(t *testing.T) {
	s, g := newTestServer(t, "10.8.0.10", "10.8.0.200")
	a, b := &client{mac: macA}, &client{mac: macB}
	now := dora(t, s, g, a, t0)
	dora(t, s, g, b, now)
	if a.addr == b.addr || !s.pool.Contains(a.addr) || !s.pool.Contains(b.addr) {
		t.Fatalf("a %v b %v", a.addr, b.addr)
	}
	if st := s.Stats(now); st.InUse != 2 || st.PoolSize != 190 || st.Offers != 2 || st.Acks != 2 {
		t.Fatalf("stats %+v", st)
	}
	// A's DISCOVER again (its lease is bound): same address, no probe needed.
	s.Handle(a.frame(Discover, nil), now)
	out := g.take()
	if off := a.reply(t, out); off.YIAddr != a.addr || len(probes(out)) != 0 {
		t.Fatalf("re-discover offered %v (probes %v), want %v at once", off.YIAddr, probes(out), a.addr)
	}
	// A RELEASE frees it.
	s.Handle(a.frame(Release, func(m *Message) { m.CIAddr, m.ServerID = a.addr, s.cfg.ServerIP() }), now)
	if st := s.Stats(now); st.InUse != 1 {
		t.Fatalf("after release: %+v", st)
	}
}

func TestServerSkipsAnsweredAddress(t *testing.T) {
	s, g := newTestServer(t, "10.8.0.10", "10.8.0.200")
	a := &client{mac: macA}
	s.Handle(a.frame(Discover, nil), t0)
	first := probes(g.take())[0]
	// A static host answers the probe: the address is not offered.
	s.Handle(AppendARP(nil, ARP{EthSrc: macS, EthDst: s.cfg.ServerMAC, Op: ARPReply, SenderMAC: macS, SenderIP: first, TargetMAC: s.cfg.ServerMAC, TargetIP: IPUnspecified}), t0)
	second := probes(g.take())
	if len(second) != 1 || second[0] == first {
		t.Fatalf("after a conflict on %v: probes %v", first, second)
	}
	now := t0.Add(s.cfg.ProbeTimeout)
	s.Tick(now)
	if off := a.reply(t, g.take()); off.YIAddr != second[0] {
		t.Fatalf("offered %v, want %v", off.YIAddr, second[0])
	}
	// A later client asking for the static host's address does not get it.
	b := &client{mac: macB}
	s.Handle(b.frame(Discover, func(m *Message) { m.RequestedIP = first }), now)
	if p := probes(g.take()); len(p) != 1 || p[0] == first {
		t.Fatalf("probed %v for a client asking for the quarantined %v", p, first)
	}
	// Nor may it renew into it.
	s.Handle(b.frame(Request, func(m *Message) { m.RequestedIP = first }), now)
	if r := b.reply(t, g.take()); r.Type != Nak {
		t.Fatalf("INIT-REBOOT into a quarantined address: %v", r.Type)
	}
	if st := s.Stats(now); st.Conflicts != 1 || st.Quarantined != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestServerLearnsLeasesAfterMove: a new server (the hub moved) has no
// table; clients renewing their addresses keep them, after a probe, and a
// client claiming another's address is refused.
func TestServerLearnsLeasesAfterMove(t *testing.T) {
	s1, g1 := newTestServer(t, "10.8.0.10", "10.8.0.200")
	a, b := &client{mac: macA}, &client{mac: macB}
	now := dora(t, s1, g1, a, t0)
	now = dora(t, s1, g1, b, now)

	s2, g2 := newTestServer(t, "10.8.0.10", "10.8.0.200")
	now = now.Add(5 * time.Minute) // T1: renew by unicast to the server
	renew := func(c *client) []byte {
		c.xid++
		m := &Message{Op: OpRequest, XID: c.xid, CHAddr: c.mac, Type: Request, CIAddr: c.addr}
		return ClientFrame(nil, m, c.addr, s2.cfg.ServerIP(), s2.cfg.ServerMAC)
	}
	s2.Handle(renew(a), now)
	if p := probes(g2.take()); len(p) != 1 || p[0] != a.addr {
		t.Fatalf("unknown renewal: probes %v, want one for %v", p, a.addr)
	}
	// A answers the probe for its own address: acknowledged at once.
	s2.Handle(AppendARP(nil, ARP{EthSrc: macA, EthDst: s2.cfg.ServerMAC, Op: ARPReply, SenderMAC: macA, SenderIP: a.addr, TargetMAC: s2.cfg.ServerMAC}), now)
	if r := a.reply(t, g2.take()); r.Type != Ack || r.YIAddr != a.addr {
		t.Fatalf("renewal after a move: %+v", r)
	}
	// B does not answer: acknowledged when the probe times out.
	s2.Handle(renew(b), now)
	g2.take()
	s2.Tick(now.Add(s2.cfg.ProbeTimeout))
	if r := b.reply(t, g2.take()); r.Type != Ack || r.YIAddr != b.addr {
		t.Fatalf("renewal after a move: %+v", r)
	}
	// A known renewal is acknowledged without a probe.
	s2.Handle(renew(a), now)
	out := g2.take()
	if r := a.reply(t, out); r.Type != Ack || len(probes(out)) != 0 {
		t.Fatalf("known renewal: %v, probes %v", r.Type, probes(out))
	}
	// A third client claiming A's address is refused.
	c := &client{mac: macS, addr: a.addr}
	s2.Handle(renew(c), now)
	if r := c.reply(t, g2.take()); r.Type != Nak {
		t.Fatalf("a client renewing another's address: %v", r.Type)
	}
	// A renewal that another host answers is refused too.
	d := &client{mac: [6]byte{2, 0, 0, 0, 0, 0xd}, addr: ip("10.8.0.77")}
	s2.Handle(renew(d), now)
	g2.take()
	s2.Handle(AppendARP(nil, ARP{EthSrc: macS, EthDst: s2.cfg.ServerMAC, Op: ARPReply, SenderMAC: macS, SenderIP: d.addr, TargetMAC: s2.cfg.ServerMAC}), now)
	if r := d.reply(t, g2.take()); r.Type != Nak {
		t.Fatalf("renewal of an address another host answers for: %v", r.Type)
	}
	if st := s2.Stats(now); st.Learned != 2 || st.InUse != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServerDeclineAndARP(t *testing.T) {
	s, g := newTestServer(t, "10.8.0.10", "10.8.0.200")
	a := &client{mac: macA}
	now := dora(t, s, g, a, t0)
	s.Handle(a.frame(Decline, func(m *Message) { m.RequestedIP, m.ServerID = a.addr, s.cfg.ServerIP() }), now)
	if s.pool.Free(ClientKey(nil, macB), a.addr, now) {
		t.Fatal("a declined address is free")
	}
	s.Handle(a.frame(Discover, nil), now)
	if p := probes(g.take()); len(p) != 1 || p[0] == a.addr {
		t.Fatalf("probes %v after declining %v", p, a.addr)
	}
	// The server answers ARP for its own address.
	s.Handle(AppendARP(nil, ARP{EthSrc: macB, EthDst: Broadcast, Op: ARPRequest, SenderMAC: macB, SenderIP: ip("10.8.0.99"), TargetIP: s.cfg.ServerIP()}), now)
	var got bool
	for _, f := range g.take() {
		if r, ok := ParseARP(f); ok && r.Op == ARPReply && r.SenderIP == s.cfg.ServerIP() && r.SenderMAC == s.cfg.ServerMAC && r.EthDst == macB {
			got = true
		}
	}
	if !got {
		t.Fatal("no ARP reply for the server's address")
	}
	// Frames for other stations or ports are ignored, and Wants says so cheaply.
	other := AppendUDP(nil, UDP{SrcMAC: macA, DstMAC: Broadcast, SrcIP: IPUnspecified, DstIP: IPBroadcast, SrcPort: 68, DstPort: 1067, Payload: make([]byte, 300)})
	if Wants(other) {
		t.Fatal("Wants a UDP frame to another port")
	}
	if !Wants(a.frame(Discover, nil)) {
		t.Fatal("Wants no DISCOVER")
	}
	binary.BigEndian.PutUint16(other[ethLen+ipLen+2:], ServerPort)
	s.Handle(other, now) // not DHCP: no panic, no reply
	if out := g.take(); len(out) != 0 {
		t.Fatalf("answered a malformed message: %d frames", len(out))
	}
}

func TestServerSelectingAnotherServer(t *testing.T) {
	s, g := newTestServer(t, "10.8.0.10", "10.8.0.11") // one address
	a, b := &client{mac: macA}, &client{mac: macB}
	s.Handle(a.frame(Discover, nil), t0)
	g.take()
	now := t0.Add(s.cfg.ProbeTimeout)
	s.Tick(now)
	a.reply(t, g.take())
	// While the offer is held, B gets nothing: the only address is A's.
	s.Handle(b.frame(Discover, nil), now)
	if out := g.take(); len(out) != 0 {
		t.Fatalf("the held address was probed or offered to B: %d frames", len(out))
	}
	// A picks another server: the hold ends and B can have it.
	s.Handle(a.frame(Request, func(m *Message) { m.ServerID, m.RequestedIP = ip("10.8.0.1"), ip("10.8.0.11") }), now)
	s.Handle(b.frame(Discover, nil), now)
	if p := probes(g.take()); len(p) != 1 || p[0] != ip("10.8.0.11") {
		t.Fatalf("probes %v", p)
	}
}
