// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"net/netip"

	"github.com/hubfleet/hubfleet/pkg/mesh"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// The UDP data channel in Kubernetes (issue #14): every member serves UDP on
// the VPN port's number (the Service exposes it for UDP beside TCP) and
// advertises port 0, "the number of the TCP port you dialled". kube-proxy
// balances the UDP flow apart from the TLS connection, so a client's
// datagrams may reach another member than its session's: the mesh forwards
// them (pkg/mesh/udp.go) — the datagram session ID's first four bytes name
// the owner — and the owner's datagrams go back through the member they
// came from, whose socket the client's flow is bound to.

// meshUDP is member.UDPForwarder over the mesh.
type meshUDP struct {
	m    *mesh.Mesh
	tag  uint32
	self string // this member's name, for relayed sessions' key calls (udprelay.go)
}

func (f meshUDP) Tag() uint32 { return f.tag }

func (f meshUDP) Owner(tag uint32) (string, bool) { return f.m.DatagramOwner(tag) }

func (f meshUDP) Send(member string, toClient bool, addr netip.AddrPort, ds [][]byte) error {
	return f.m.SendDatagrams(member, toClient, addr, ds)
}

// listenUDP opens the UDP socket (or takes the test's); without one the
// sessions stay on TLS, which is no reason to stop serving. A test that
// gives a TCP listener and no UDP socket runs without UDP.
func (m *Member) listenUDP() (*udpio.Conn, uint16) {
	if m.opts.UDPConn != nil {
		return m.opts.UDPConn, m.opts.UDPAdvertise
	}
	if m.opts.Listener != nil {
		return nil, 0
	}
	uc, err := udpio.Listen("udp", Listen)
	if err != nil {
		m.log.Error("cannot listen on UDP; sessions stay on TLS", "addr", Listen, "err", err)
		return nil, 0
	}
	return uc, 0
}

// serveUDP runs the UDP data channel on uc until it is closed.
func (m *Member) serveUDP(uc *udpio.Conn, advertise uint16) {
	if err := m.srv.ServeUDP(uc, advertise); err != nil {
		m.log.Error("UDP data channel stopped; sessions fall back to TLS", "err", err)
	}
}
