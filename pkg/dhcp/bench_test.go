// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkWantsOther: what the server's port costs per broadcast frame
// that is not DHCP or ARP (a hub floods every broadcast to it).
func BenchmarkWantsOther(b *testing.B) {
	f := AppendUDP(nil, UDP{SrcMAC: macA, DstMAC: Broadcast, SrcIP: ip("10.8.0.5"), DstIP: IPBroadcast, SrcPort: 5353, DstPort: 5353, Payload: make([]byte, 200)})
	b.ReportAllocs()
	for b.Loop() {
		if Wants(f) {
			b.Fatal("wants mDNS")
		}
	}
}

// BenchmarkLease: one client's DISCOVER, probe timeout, OFFER, REQUEST and
// ACK, each with a new client, in a pool large enough for all.
func BenchmarkLease(b *testing.B) {
	c, _ := Settings{Prefix: "10.0.0.0/8", RangeStart: "10.0.0.10", RangeEnd: "10.255.255.250"}.Config()
	var offered Message
	var got bool
	s := NewServer(c, func(f []byte) {
		if u, ok := ParseUDP(f); ok {
			if m, err := Parse(u.Payload); err == nil {
				offered, got = *m, true
			}
		}
	}, nil)
	now := t0
	var n uint32
	b.ReportAllocs()
	for b.Loop() {
		n++
		mac := [6]byte{2, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
		s.Handle(ClientFrame(nil, &Message{Op: OpRequest, XID: n, CHAddr: mac, Type: Discover}, netip.Addr{}, netip.Addr{}, [6]byte{}), now)
		now = now.Add(c.ProbeTimeout)
		got = false
		s.Tick(now)
		if !got || offered.Type != Offer {
			b.Fatal("no offer")
		}
		got = false
		s.Handle(ClientFrame(nil, &Message{Op: OpRequest, XID: n, CHAddr: mac, Type: Request, ServerID: offered.ServerID, RequestedIP: offered.YIAddr}, netip.Addr{}, netip.Addr{}, [6]byte{}), now)
		if !got || offered.Type != Ack {
			b.Fatal("no ack")
		}
		now = now.Add(time.Millisecond)
	}
}
