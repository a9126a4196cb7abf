// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package udpio

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	recvMsgs    = 64
	recvMsgsGRO = 16
	// recvBufGRO holds a GRO buffer: up to 64 KiB of coalesced datagrams.
	recvBufGRO = 65535
	recvBuf    = 9216
	cmsgLen    = 64
)

type sys struct {
	rc     syscall.RawConn
	v6     bool // an AF_INET6 socket: IPv4 peers are written as mapped addresses
	groOn  bool
	gsoOff atomic.Bool // the kernel or the device refused a GSO send

	// Reader state: one goroutine.
	rhdrs  []unix.Mmsghdr
	riovs  []unix.Iovec
	rbufs  [][]byte
	rnames []unix.RawSockaddrAny
	rctl   [][]byte
	rn     int
	rerr   error
	rfn    func(fd uintptr) bool // recv, bound once

	wmu   sync.Mutex
	whdrs []unix.Mmsghdr
	wiovs []unix.Iovec
	wctl  []byte
	wname unix.RawSockaddrAny
	wnlen uint32
	wsent int
	werr  error
	wfn   func(fd uintptr) bool
}

func (c *Conn) gsoOn() bool { return !c.gsoOff.Load() }

func (c *Conn) init(uc *net.UDPConn) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	c.rc = rc
	la, _ := uc.LocalAddr().(*net.UDPAddr)
	c.v6 = la != nil && la.IP.To4() == nil
	var sockErr error
	err = rc.Control(func(fd uintptr) {
		f := int(fd)
		// SetReadBuffer is capped at net.core.rmem_max (208 KiB by default),
		// a few milliseconds of a fast path: a burst of datagrams beyond it
		// is dropped by the kernel before the reader wakes. A process with
		// CAP_NET_ADMIN may go past the cap.
		_ = unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer)
		_ = unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer)
		if c.v6 {
			sockErr = unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
			if !c.v6only(f) {
				_ = unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
			}
		} else {
			// PROBE, not DO: the DF bit is set, but the kernel does not
			// refuse sends above its cached path MTU, so our own probes
			// (DPLPMTUD) decide what fits.
			sockErr = unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		}
		c.groOn = unix.SetsockoptInt(f, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		// UDP_SEGMENT as a socket option (value 0: off until a message asks)
		// exists exactly where the per-message one does (Linux 4.18).
		if unix.SetsockoptInt(f, unix.IPPROTO_UDP, unix.UDP_SEGMENT, 0) != nil {
			c.gsoOff.Store(true)
		}
	})
	if err == nil {
		err = sockErr
	}
	if err != nil {
		return err
	}
	n, size := recvMsgs, recvBuf
	if c.groOn {
		n, size = recvMsgsGRO, recvBufGRO
	}
	c.rhdrs = make([]unix.Mmsghdr, n)
	c.riovs = make([]unix.Iovec, n)
	c.rbufs = make([][]byte, n)
	c.rnames = make([]unix.RawSockaddrAny, n)
	c.rctl = make([][]byte, n)
	for i := range n {
		c.rbufs[i] = make([]byte, size)
		c.rctl[i] = make([]byte, cmsgLen)
	}
	c.rfn = c.recv
	c.whdrs = make([]unix.Mmsghdr, 0, 64)
	c.wiovs = make([]unix.Iovec, 0, 64)
	c.wctl = make([]byte, 64*unix.CmsgSpace(2))
	c.wfn = c.send
	return nil
}

func (c *Conn) v6only(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	return err == nil && v == 1
}

// ReadBatch waits for datagrams and calls fn for each, with its sender.
// d is valid only during the call. It returns after one recvmmsg(2): up to 64
// datagrams, more with GRO.
func (c *Conn) ReadBatch(fn func(d []byte, from netip.AddrPort)) error {
	for i := range c.rhdrs {
		c.riovs[i].Base = &c.rbufs[i][0]
		c.riovs[i].SetLen(len(c.rbufs[i]))
		h := &c.rhdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&c.rnames[i]))
		h.Namelen = unix.SizeofSockaddrAny
		h.Iov = &c.riovs[i]
		h.SetIovlen(1)
		h.Control = &c.rctl[i][0]
		h.SetControllen(cmsgLen)
		h.Flags = 0
		c.rhdrs[i].Len = 0
	}
	c.rn, c.rerr = 0, nil
	if err := c.rc.Read(c.rfn); err != nil {
		return err
	}
	if c.rerr != nil {
		return c.rerr
	}
	for i := range c.rn {
		m := &c.rhdrs[i]
		from := sockaddrToAddrPort(&c.rnames[i])
		b := c.rbufs[i][:m.Len]
		seg := 0
		if c.groOn {
			seg = groSize(c.rctl[i][:m.Hdr.Controllen])
		}
		if seg <= 0 || seg >= len(b) {
			fn(b, from)
			continue
		}
		for len(b) > 0 {
			n := min(seg, len(b))
			fn(b[:n], from)
			b = b[n:]
		}
	}
	runtime.KeepAlive(c.rbufs)
	return nil
}

func (c *Conn) recv(fd uintptr) bool {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhdrs[0])), uintptr(len(c.rhdrs)), unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN || errno == unix.EINTR {
		return false
	}
	if errno != 0 {
		c.rerr = errno
		return true
	}
	c.rn = int(n)
	return true
}

// groSize is the segment size of a GRO buffer, from its UDP_GRO cmsg.
func groSize(ctl []byte) int {
	for len(ctl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(ctl) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && int(h.Len) >= unix.CmsgLen(4) {
			return int(*(*int32)(unsafe.Pointer(&ctl[unix.CmsgLen(0)])))
		}
		ctl = ctl[min(len(ctl), unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0))):]
	}
	return 0
}

func sockaddrToAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr).Unmap()
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

func (c *Conn) putName(to netip.AddrPort) {
	c.wname = unix.RawSockaddrAny{}
	a := to.Addr()
	if c.v6 {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&c.wname))
		sa.Family = unix.AF_INET6
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(to.Port()>>8), byte(to.Port())
		sa.Addr = a.As16() // an IPv4 address as ::ffff:a.b.c.d
		c.wnlen = unix.SizeofSockaddrInet6
		return
	}
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&c.wname))
	sa.Family = unix.AF_INET
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(to.Port()>>8), byte(to.Port())
	sa.Addr = a.Unmap().As4()
	c.wnlen = unix.SizeofSockaddrInet4
}

// WriteBatch sends dgrams to one peer with sendmmsg(2); with GSO each run of
// equal-sized datagrams (and one shorter after it) goes as one message the
// kernel cuts. It blocks while the socket buffer is full. The datagrams are
// not copied.
func (c *Conn) WriteBatch(to netip.AddrPort, dgrams [][]byte) error {
	if len(dgrams) == 0 {
		return nil
	}
	if !c.v6 && !to.Addr().Unmap().Is4() {
		return &net.OpError{Op: "write", Net: "udp4", Err: errors.New("IPv6 destination on an IPv4 socket")}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.putName(to)
	err := c.writeLocked(dgrams, c.gsoOn())
	if err != nil && c.gsoOn() && (errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL)) {
		// A device without checksum offload refuses GSO with EIO: from
		// now on one datagram per message.
		c.gsoOff.Store(true)
		err = c.writeLocked(dgrams, false)
	}
	return err
}

func (c *Conn) writeLocked(dgrams [][]byte, gso bool) error {
	c.whdrs = c.whdrs[:0]
	c.wiovs = c.wiovs[:0]
	for _, d := range dgrams {
		c.wiovs = append(c.wiovs, unix.Iovec{Base: &d[0]})
		c.wiovs[len(c.wiovs)-1].SetLen(len(d))
	}
	ctl := 0
	for i := 0; i < len(dgrams); {
		j := i + 1
		if gso {
			total := len(dgrams[i])
			for j < len(dgrams) && j-i < MaxSegments && total+len(dgrams[j]) <= 65000 && len(dgrams[j]) <= len(dgrams[i]) {
				total += len(dgrams[j])
				j++
				if len(dgrams[j-1]) < len(dgrams[i]) {
					break // a shorter datagram ends the run
				}
			}
		}
		var h unix.Mmsghdr
		h.Hdr.Name = (*byte)(unsafe.Pointer(&c.wname))
		h.Hdr.Namelen = c.wnlen
		h.Hdr.Iov = &c.wiovs[i]
		h.Hdr.SetIovlen(j - i)
		if j-i > 1 {
			b := c.wctl[ctl : ctl+unix.CmsgSpace(2)]
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
			ch.Level, ch.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(len(dgrams[i]))
			h.Hdr.Control = &b[0]
			h.Hdr.SetControllen(len(b))
			ctl += len(b)
		}
		c.whdrs = append(c.whdrs, h)
		i = j
	}
	c.wsent, c.werr = 0, nil
	for c.wsent < len(c.whdrs) {
		if err := c.rc.Write(c.wfn); err != nil {
			return err
		}
		if c.werr != nil {
			break
		}
	}
	runtime.KeepAlive(dgrams)
	err := c.werr
	c.werr = nil
	return err
}

func (c *Conn) send(fd uintptr) bool {
	rest := c.whdrs[c.wsent:]
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)), unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
		c.wsent += int(n)
		return true
	case unix.EAGAIN, unix.EINTR:
		return false
	case unix.EMSGSIZE, unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EPERM:
		// This datagram cannot go (too big for the interface, an ICMP error
		// from an earlier one, a firewall): it is lost, as on the path;
		// the rest still go.
		c.wsent++
		return true
	}
	c.werr = errno
	return true
}

// RouteMTU is the MTU of the interface the route to dst leaves by (the
// kernel's IP_MTU of a socket connected to dst), or 0 when unknown: the
// ceiling of a path MTU search.
func RouteMTU(dst netip.AddrPort) int {
	network := "udp4"
	if !dst.Addr().Unmap().Is4() {
		network = "udp6"
	}
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())))
	if err != nil {
		return 0
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	mtu := 0
	rc.Control(func(fd uintptr) {
		if network == "udp4" {
			mtu, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU)
		} else {
			mtu, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU)
		}
	})
	return mtu
}
