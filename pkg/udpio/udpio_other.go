// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !linux

package udpio

import (
	"net"
	"net/netip"
	"sync"
)

// sys is the portable fallback: one datagram per system call.
type sys struct {
	uc    *net.UDPConn
	buf   []byte
	wmu   sync.Mutex
	groOn bool
}

func (c *Conn) gsoOn() bool { return false }

func (c *Conn) init(uc *net.UDPConn) error {
	c.sys.uc, c.buf = uc, make([]byte, 9216)
	return nil
}

func (c *Conn) ReadBatch(fn func(d []byte, from netip.AddrPort)) error {
	n, from, err := c.sys.uc.ReadFromUDPAddrPort(c.buf)
	if err != nil {
		return err
	}
	fn(c.buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	return nil
}

func (c *Conn) WriteBatch(to netip.AddrPort, dgrams [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, d := range dgrams {
		if _, err := c.sys.uc.WriteToUDPAddrPort(d, to); err != nil {
			return err
		}
	}
	return nil
}

// RouteMTU is unknown here: the search ceiling stays at its default.
func RouteMTU(dst netip.AddrPort) int { return 0 }
