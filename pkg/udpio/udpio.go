// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package udpio moves batches of UDP datagrams with as few system calls as
// the kernel allows: on Linux recvmmsg(2) and sendmmsg(2), UDP GSO
// (UDP_SEGMENT: a run of equal-sized datagrams leaves in one message, cut by
// the kernel or the NIC) and UDP GRO (UDP_GRO: the kernel hands over several
// datagrams of one flow in one buffer). Each is used only where the kernel
// has it; elsewhere one datagram per system call.
//
// The system calls are made directly (golang.org/x/sys/unix) rather than
// through golang.org/x/net's ipv4/ipv6 ReadBatch: that API allocates a
// net.UDPAddr per datagram received, and the data path allocates nothing per
// datagram.
package udpio

import (
	"net"
	"net/netip"
)

// socketBuffer is the send and receive buffer asked for: a few tens of
// milliseconds at a gigabit.
const socketBuffer = 4 << 20

// MaxSegments is the most datagrams one GSO message carries (the kernel's
// UDP_MAX_SEGMENTS is 64 on older kernels, 128 on newer).
const MaxSegments = 64

// Conn is a UDP socket with batch reads and writes. One goroutine reads;
// writes may come from several goroutines and are serialised.
type Conn struct {
	uc *net.UDPConn
	sys
}

// Listen opens a UDP socket on addr ("host:port", ":port").
func Listen(network, addr string) (*Conn, error) {
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, err
	}
	uc, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, err
	}
	return New(uc)
}

// New takes over uc: sets 4 MiB socket buffers, the don't-fragment bit on
// every datagram (path MTU discovery: a datagram too big for the path must be
// lost, not fragmented) and GRO where available.
func New(uc *net.UDPConn) (*Conn, error) {
	c := &Conn{uc: uc}
	_ = uc.SetReadBuffer(socketBuffer)
	_ = uc.SetWriteBuffer(socketBuffer)
	if err := c.init(uc); err != nil {
		uc.Close()
		return nil, err
	}
	return c, nil
}

// LocalAddr is the socket's address.
func (c *Conn) LocalAddr() netip.AddrPort {
	return c.uc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket; a blocked ReadBatch returns net.ErrClosed.
func (c *Conn) Close() error { return c.uc.Close() }

// Offloads says which kernel batching the socket uses.
func (c *Conn) Offloads() (gso, gro bool) { return c.gsoOn(), c.groOn }

// MaxPayload is the largest UDP payload on a link of mtu bytes towards dst
// (IP and UDP headers taken off), or 0 for an unknown mtu.
func MaxPayload(mtu int, dst netip.Addr) int {
	if mtu <= 0 {
		return 0
	}
	if dst.Unmap().Is4() {
		return mtu - 20 - 8
	}
	return mtu - 40 - 8
}
