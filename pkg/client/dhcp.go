// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/pkg/dhcp"
)

// The DHCP client speaks through the TAP device the way dhclient and udhcpc
// do, with a packet socket bound to it: what it writes leaves through the
// TAP like any of the host's frames, and it reads the server's replies as
// the kernel receives them. So it needs nothing from the session's frame
// path, which carries its frames like any others and pays nothing for it.

// runDHCP runs the session loop with a DHCP client beside it. When ctx
// ends, the lease is released while the session still carries the
// RELEASE, then the session ends.
func (c *client) runDHCP(ctx context.Context) error {
	dc, err := newDHCPClient(c.dev.Name(), c.log, c.say)
	if err != nil {
		// The session does not depend on an address: a TAP already moved to
		// another namespace, or a missing CAP_NET_RAW, leaves a working link
		// for the host to address by hand.
		c.say("DHCP not started (%v); the TAP stays without an address", err)
		return c.run(ctx)
	}
	// A DISCOVER sent before the session is up is lost; the status line run
	// writes when a session starts is the signal to send one at once rather
	// than at the next retransmission (seconds later after a slow login).
	c.status = sessionWatcher{w: c.status, up: dc.sessionUp}
	sctx, stopSession := context.WithCancel(context.Background())
	defer stopSession()
	done := make(chan error, 1)
	go func() { done <- c.run(sctx) }()
	dctx, stopDHCP := context.WithCancel(ctx)
	defer stopDHCP()
	dhcpDone := make(chan struct{})
	go func() { defer close(dhcpDone); dc.run(dctx) }()
	select {
	case err := <-done: // a failure retrying cannot fix
		stopDHCP()
		<-dhcpDone
		return err
	case <-ctx.Done():
		<-dhcpDone
		stopSession()
		return <-done
	}
}

// sessionWatcher passes status lines through and calls up when one says a
// session started (the line run prints on every connect).
type sessionWatcher struct {
	w  io.Writer
	up func()
}

func (s sessionWatcher) Write(b []byte) (int, error) {
	if bytes.HasPrefix(b, []byte("connected to hub ")) {
		s.up()
	}
	return s.w.Write(b)
}

// DHCP client timers.
const (
	// firstRetransmit is short because the first DISCOVER may be sent
	// before the session is up and be lost; RFC 2131's 4 s would put the
	// address seconds behind the session. Retransmits double up to
	// maxRetransmit (RFC 2131 4.1's 64 s is for wires that may be busy; a
	// hub's server answers at once or is absent).
	firstRetransmit = 250 * time.Millisecond
	maxRetransmit   = 4 * time.Second
	// releaseLinger lets a RELEASE leave through the session before it
	// ends. A RELEASE has no answer (RFC 2131 4.4.6) and a lost one only
	// means the address stays held until its lease expires.
	releaseLinger = 100 * time.Millisecond
)

// lease is what the client holds.
type lease struct {
	addr      netip.Prefix
	server    netip.Addr
	serverMAC [6]byte
	routers   []netip.Addr
	dns       []netip.Addr
	t1, t2    time.Time
	expiry    time.Time
	length    time.Duration
}

type dhcpClient struct {
	ifname   string
	ifindex  int
	stopped  bool // the TAP left, or was addressed by other means: DHCP has nothing to do
	mac      [6]byte
	clientID []byte
	sock     *os.File
	log      *slog.Logger
	say      func(string, ...any)
	started  time.Time
	buf      []byte
	cur      *lease
	// kick wakes a DISCOVER waiting for its retransmission when a session
	// comes up; connected is when the last one did.
	kick      chan struct{}
	connected atomic.Int64
}

func (d *dhcpClient) sessionUp() {
	d.connected.Store(time.Now().UnixNano())
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func newDHCPClient(ifname string, log *slog.Logger, say func(string, ...any)) (*dhcpClient, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("dhcp: %s has no Ethernet address", ifname)
	}
	sock, err := packetSocket(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("dhcp on %s: %w", ifname, err)
	}
	d := &dhcpClient{ifname: ifname, ifindex: ifi.Index, sock: sock, log: log, say: say, started: time.Now(), buf: make([]byte, 2048), kick: make(chan struct{}, 1)}
	copy(d.mac[:], ifi.HardwareAddr)
	// RFC 2132 9.14: type 1 (Ethernet) and the address, as dhclient sends it,
	// so the server keys the lease the same whichever client asks.
	d.clientID = append([]byte{1}, d.mac[:]...)
	return d, nil
}

// udp68 is a classic BPF program passing IPv4/UDP frames to port 68 only:
// on a busy TAP the socket must not queue (and the client copy) every frame.
var udp68 = []unix.SockFilter{
	{Code: 0x28, K: 12},                     // ldh [12]: EtherType
	{Code: 0x15, Jf: 6, K: 0x0800},          // IPv4, else drop
	{Code: 0x30, K: 23},                     // ldb [23]: protocol
	{Code: 0x15, Jf: 4, K: 17},              // UDP, else drop
	{Code: 0xb1, K: 14},                     // ldxb 4*([14]&0xf): header length
	{Code: 0x48, K: 16},                     // ldh [x+16]: destination port
	{Code: 0x15, Jf: 1, K: dhcp.ClientPort}, // 68, else drop
	{Code: 0x06, K: 0xffff},                 // pass
	{Code: 0x06, K: 0},                      // drop
}

func packetSocket(ifindex int) (*os.File, error) {
	proto := int(htons(unix.ETH_P_IP))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w (needs CAP_NET_RAW, like the TAP needs CAP_NET_ADMIN)", err)
	}
	prog := unix.SockFprog{Len: uint16(len(udp68)), Filter: &udp68[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("filtering the packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding the packet socket: %w", err)
	}
	// Non-blocking, so os.NewFile registers it with the poller and read
	// deadlines work.
	return os.NewFile(uintptr(fd), "dhcp"), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func xid() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// run obtains a lease, renews it at T1, rebinds at T2, starts over when it
// expires or the server refuses it, and releases it when ctx ends.
func (d *dhcpClient) run(ctx context.Context) {
	defer d.sock.Close()
	for ctx.Err() == nil {
		if d.cur == nil {
			if !d.acquire(ctx) {
				break
			}
			continue
		}
		if !d.keep(ctx) {
			break
		}
	}
	if d.cur != nil {
		d.release()
	}
}

func (d *dhcpClient) request(typ dhcp.MessageType, x uint32) *dhcp.Message {
	return &dhcp.Message{
		Op: dhcp.OpRequest, XID: x, CHAddr: d.mac, Type: typ, ClientID: d.clientID,
		ParamList: []byte{1, 3, 6, 51, 54, 58, 59}, MaxSize: 1500,
		Secs: uint16(min(time.Since(d.started)/time.Second, 0xffff)),
	}
}

// exchange sends m (from src to dst at dstMAC, or broadcast) until a reply
// of the transaction arrives, retransmitting with doubling waits, and gives
// up at deadline (zero: never) or when ctx ends.
func (d *dhcpClient) exchange(ctx context.Context, m *dhcp.Message, src, dst netip.Addr, dstMAC [6]byte, deadline time.Time, want ...dhcp.MessageType) (*dhcp.Message, [6]byte, bool) {
	frame := dhcp.ClientFrame(nil, m, src, dst, dstMAC)
	wait := firstRetransmit
	for ctx.Err() == nil {
		if d.cur == nil && d.yield() {
			return nil, [6]byte{}, false
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, [6]byte{}, false
		}
		if _, err := d.sock.Write(frame); err != nil {
			d.log.Debug("dhcp: sending", "type", m.Type, "err", err)
		}
		until := time.Now().Add(wait)
		if !deadline.IsZero() && deadline.Before(until) {
			until = deadline
		}
		r, from, ok, kicked := d.await(ctx, m.XID, until, want, dst.IsValid())
		if ok {
			return r, from, true
		}
		if kicked {
			wait = firstRetransmit // a new session: the last send may be lost
			continue
		}
		wait = min(2*wait, maxRetransmit)
	}
	return nil, [6]byte{}, false
}

// await reads replies until one of transaction x of a wanted type arrives,
// until passes or ctx ends; kicked reports a new session cut the wait
// short (only for broadcasts: a unicast renewal is not lost that way
// more than any other frame).
func (d *dhcpClient) await(ctx context.Context, x uint32, until time.Time, want []dhcp.MessageType, unicast bool) (r *dhcp.Message, from [6]byte, ok, kicked bool) {
	stop := context.AfterFunc(ctx, func() { d.sock.SetReadDeadline(time.Now()) })
	defer stop()
	var wasKicked atomic.Bool
	if !unicast {
		waiting := make(chan struct{})
		defer close(waiting)
		go func() {
			select {
			case <-d.kick:
				wasKicked.Store(true)
				d.sock.SetReadDeadline(time.Now())
			case <-waiting:
			}
		}()
	}
	d.sock.SetReadDeadline(until)
	for ctx.Err() == nil {
		n, err := d.sock.Read(d.buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				d.log.Debug("dhcp: reading", "err", err)
			}
			return nil, from, false, wasKicked.Load()
		}
		r, from, ok := dhcp.ParseReply(d.buf[:n], d.mac, x)
		if !ok {
			continue
		}
		for _, t := range want {
			if r.Type == t {
				return r, from, true, false
			}
		}
	}
	return nil, from, false, false
}

// acquire runs DISCOVER/OFFER/REQUEST/ACK; false when ctx ended.
func (d *dhcpClient) acquire(ctx context.Context) bool {
	d.started = time.Now()
	warned := false
	for ctx.Err() == nil {
		x := xid()
		deadline := time.Time{}
		if !warned {
			// Say once that nobody answers, then keep trying quietly: the
			// hub may get a server later, or the session may still be
			// connecting.
			deadline = time.Now().Add(10 * time.Second)
		}
		off, _, ok := d.exchange(ctx, d.request(dhcp.Discover, x), netip.Addr{}, netip.Addr{}, [6]byte{}, deadline, dhcp.Offer)
		if d.stopped {
			return false
		}
		if !ok {
			if ctx.Err() == nil && !warned {
				d.say("no DHCP server answered on tap %s yet; still asking (give --address if the hub has no spec.dhcp)", d.ifname)
				warned = true
			}
			continue
		}
		req := d.request(dhcp.Request, x)
		req.ServerID, req.RequestedIP = off.ServerID, off.YIAddr
		ack, from, ok := d.exchange(ctx, req, netip.Addr{}, netip.Addr{}, [6]byte{}, time.Now().Add(maxRetransmit*2), dhcp.Ack, dhcp.Nak)
		if !ok || ack.Type == dhcp.Nak {
			continue // the offer went to someone else meanwhile: start over
		}
		if err := d.bind(ack, from); err != nil {
			d.say("cannot configure the address from DHCP on %s: %v", d.ifname, err)
			if !sleep(ctx, maxRetransmit) {
				return false
			}
			continue
		}
		return true
	}
	return false
}

// yield reports, while the client holds no lease, whether DHCP should stop
// for good: the TAP moved to another network namespace (scripts and the e2e
// suite create it here and move it), or it got an IPv4 address by other
// means (ip addr add). DHCP is the default without --address, so a host
// configured by hand must not keep broadcasting DISCOVERs into its hub.
func (d *dhcpClient) yield() bool {
	link, err := netlink.LinkByIndex(d.ifindex)
	switch {
	case err != nil || link.Attrs().Name != d.ifname:
		d.say("tap %s left this network namespace; DHCP stops (configure its address where it is now)", d.ifname)
	default:
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil || len(addrs) == 0 {
			return false
		}
		d.say("tap %s got address %s by other means; DHCP stops", d.ifname, addrs[0].IPNet)
	}
	d.stopped = true
	return true
}

// bind configures the acknowledged address on the TAP.
func (d *dhcpClient) bind(ack *dhcp.Message, from [6]byte) error {
	bits := 32
	if ack.SubnetMask.Is4() {
		m := ack.SubnetMask.As4()
		ones, _ := net.IPMask(m[:]).Size()
		if ones > 0 {
			bits = ones
		}
	}
	now := time.Now()
	length := ack.LeaseTime
	if length <= 0 {
		length = dhcp.DefaultLease
	}
	l := &lease{
		addr: netip.PrefixFrom(ack.YIAddr, bits), server: ack.ServerID, serverMAC: from,
		routers: ack.Routers, dns: ack.DNS, length: length,
		expiry: now.Add(length), t1: now.Add(length / 2), t2: now.Add(length * 7 / 8),
	}
	if ack.T1 > 0 && ack.T1 < length {
		l.t1 = now.Add(ack.T1)
	}
	if ack.T2 > 0 && ack.T2 < length {
		l.t2 = now.Add(ack.T2)
	}
	if !l.server.IsValid() {
		l.server = dhcp.IPBroadcast
	}
	if old := d.cur; old != nil && old.addr != l.addr {
		d.unconfigure(old)
	}
	if err := d.configure(l); err != nil {
		return err
	}
	first := d.cur == nil
	d.cur = l
	if first {
		since := "no session yet"
		if c := d.connected.Load(); c != 0 {
			since = time.Since(time.Unix(0, c)).Round(time.Millisecond).String() + " after the session came up"
		}
		d.say("address %s on tap %s from DHCP server %s in %v (%s; lease %v%s)", l.addr, d.ifname, l.server,
			time.Since(d.started).Round(time.Millisecond), since, length, describeOptions(l))
	} else {
		d.log.Debug("dhcp: lease renewed", "addr", l.addr, "until", l.expiry)
		d.say("renewed %s on tap %s until %s", l.addr, d.ifname, l.expiry.Format(time.TimeOnly))
	}
	return nil
}

func describeOptions(l *lease) string {
	s := ""
	if len(l.routers) > 0 {
		s += fmt.Sprintf(", router %s (no route is installed)", l.routers[0])
	}
	if len(l.dns) > 0 {
		s += fmt.Sprintf(", DNS %v", l.dns)
	}
	return s
}

// configure puts the address on the TAP with the lease's lifetime, so the
// kernel removes it by itself if this process dies and cannot renew.
func (d *dhcpClient) configure(l *lease) error {
	link, err := netlink.LinkByName(d.ifname)
	if err != nil {
		return err
	}
	a, err := netlink.ParseAddr(l.addr.String())
	if err != nil {
		return err
	}
	secs := int(time.Until(l.expiry) / time.Second)
	a.ValidLft, a.PreferedLft = secs, secs
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("adding %s to %s: %w", l.addr, d.ifname, err)
	}
	return nil
}

func (d *dhcpClient) unconfigure(l *lease) {
	link, err := netlink.LinkByName(d.ifname)
	if err != nil {
		return
	}
	if a, err := netlink.ParseAddr(l.addr.String()); err == nil {
		if err := netlink.AddrDel(link, a); err != nil {
			d.log.Debug("dhcp: removing the old address", "addr", l.addr, "err", err)
		}
	}
}

// keep renews the lease (unicast to the server from T1, broadcast from T2)
// until ctx ends (true: the caller releases it) or the lease is lost (the
// caller starts over).
func (d *dhcpClient) keep(ctx context.Context) bool {
	l := d.cur
	if !sleepUntil(ctx, l.t1) {
		return false
	}
	x := xid()
	req := d.request(dhcp.Request, x)
	req.CIAddr = l.addr.Addr()
	ack, from, ok := d.exchange(ctx, req, l.addr.Addr(), l.server, l.serverMAC, l.t2, dhcp.Ack, dhcp.Nak)
	if !ok && ctx.Err() == nil {
		d.say("DHCP server %s did not answer the renewal of %s; asking any server", l.server, l.addr.Addr())
		ack, from, ok = d.exchange(ctx, req, l.addr.Addr(), netip.Addr{}, [6]byte{}, l.expiry, dhcp.Ack, dhcp.Nak)
	}
	if ctx.Err() != nil {
		return false
	}
	switch {
	case !ok:
		d.say("lease of %s expired without an answer; asking for a new address", l.addr)
	case ack.Type == dhcp.Nak:
		d.say("DHCP server refused %s (%s); asking for a new address", l.addr, ack.Text)
	default:
		if ack.YIAddr == l.addr.Addr() {
			if err := d.bind(ack, from); err == nil {
				return true
			}
		}
	}
	d.unconfigure(l)
	d.cur = nil
	return true
}

func (d *dhcpClient) release() {
	l := d.cur
	m := d.request(dhcp.Release, xid())
	m.CIAddr, m.ServerID = l.addr.Addr(), l.server
	if _, err := d.sock.Write(dhcp.ClientFrame(nil, m, l.addr.Addr(), l.server, l.serverMAC)); err == nil {
		time.Sleep(releaseLinger)
	}
	d.unconfigure(l)
}

func sleepUntil(ctx context.Context, t time.Time) bool { return sleep(ctx, time.Until(t)) }
