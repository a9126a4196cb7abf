// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import "net/netip"

// ClientFrame appends a client's message m as an Ethernet frame from port
// 68 to the server port: broadcast when dstIP is invalid (no address yet,
// or rebinding), else unicast to dstIP at dstMAC (renewing). Op and CHAddr
// must be set.
func ClientFrame(b []byte, m *Message, srcIP, dstIP netip.Addr, dstMAC [6]byte) []byte {
	if !srcIP.IsValid() {
		srcIP = IPUnspecified
	}
	if !dstIP.IsValid() {
		dstIP, dstMAC = IPBroadcast, Broadcast
	}
	return AppendUDP(b, UDP{
		SrcMAC: m.CHAddr, DstMAC: dstMAC, SrcIP: srcIP, DstIP: dstIP,
		SrcPort: ClientPort, DstPort: ServerPort, Payload: m.Append(nil),
	})
}

// ParseReply reads a server's answer to the client with hardware address
// mac and transaction xid from a frame, or reports false. The server's MAC
// (the frame's source) is returned for unicast renewals.
func ParseReply(f []byte, mac [6]byte, xid uint32) (*Message, [6]byte, bool) {
	u, ok := ParseUDP(f)
	if !ok || u.DstPort != ClientPort || u.SrcPort != ServerPort {
		return nil, [6]byte{}, false
	}
	m, err := Parse(u.Payload)
	if err != nil || m.Op != OpReply || m.XID != xid || m.CHAddr != mac {
		return nil, [6]byte{}, false
	}
	return m, u.SrcMAC, true
}
