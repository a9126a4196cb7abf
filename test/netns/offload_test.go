// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package netns

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// TestSuperFramesThroughNamespaces: TCP from client A, whose TAP has
// segmentation offload, to B (offload) and to C (--offload=false), through a
// real member. B's kernel must receive super-frames — frames longer than the
// MTU, the TCP sender's 64 KiB segments carried whole through A's TAP, both
// TLS sessions and the hub — and C's only MTU-sized frames, split by the
// member in software. Both transfers must arrive intact: TCP in the receiving
// kernel drops a segment with a wrong checksum, so a wrong split or an
// unfinished partial checksum stalls the transfer instead of passing.
func TestSuperFramesThroughNamespaces(t *testing.T) {
	e := newEnv(t)
	nsA, nsB, nsC := e.clientNS("a", 1), e.clientNS("b", 2), e.clientNS("c", 3)
	e.writeConfig(map[string]map[string]string{
		"blue": {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"},
	}, []string{memberAddr(1), memberAddr(2), memberAddr(3)})
	pwFile := func(pw string) string { return e.file(pw, []byte(pw+"\n")) }
	connect := func(name, ns string, i int, user, addr string, extra ...string) *proc {
		args := append([]string{"connect", "--server", memberAddr(i) + ":8443", "--hub", "blue",
			"--user", user, "--password-file", pwFile(user + "-pw"), "--ca-file", e.caFile,
			"--tap", "hf0", "--address", addr + "/24"}, extra...)
		return e.start(name, ns, args...)
	}
	e.start("member", e.member, "member", "--config", e.config)
	connect("client A (offload)", nsA, 1, "alice", addrA)
	connect("client B (offload)", nsB, 2, "bob", addrB)
	connect("client C (no offload)", nsC, 3, "carol", addrC, "--offload=false")
	ping := func(ns, to string) bool {
		_, err := e.inNS(ns, 5*time.Second, "ping", "-c1", "-W0.3", "-n", "-q", to)
		return err == nil
	}
	eventually(t, 30*time.Second, "A pings B", func() bool { return ping(nsA, addrB) })
	eventually(t, 10*time.Second, "A pings C", func() bool { return ping(nsA, addrC) })

	for _, c := range []struct {
		name, ns, addr string
		wantSuper      bool
	}{
		{"ToOffloadClient", nsB, addrB, true},
		{"ToLegacyClient", nsC, addrC, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			capt := startCapture(t, c.ns, "hf0")
			sent, got := transfer(t, nsA, c.ns, c.addr, 32<<20)
			if sent != got {
				t.Fatalf("the data arrived changed: sha256 %x sent, %x received", sent, got)
			}
			longest, frames := capt.stop()
			t.Logf("%s's TAP took %d frames from its client, the longest %d bytes", c.addr, frames, longest)
			if frames == 0 {
				t.Fatal("the capture saw no frame")
			}
			if c.wantSuper && longest <= 1514 {
				t.Fatalf("the longest frame written to the offload client's TAP is %d bytes: super-frames were split on the way", longest)
			}
			if !c.wantSuper && longest > 1514 {
				t.Fatalf("a %d-byte frame reached the TAP of a client without offload", longest)
			}
		})
	}
}

// transfer sends n random bytes over TCP from namespace from to addr in
// namespace to and returns the SHA-256 of what was sent and of what arrived.
func transfer(t *testing.T, from, to, addr string, n int) (sent, got [32]byte) {
	t.Helper()
	var ln net.Listener
	if err := testutil.InNetns(to, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, "5201"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conn net.Conn
	if err := testutil.InNetns(from, func() (err error) {
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(addr, "5201"), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	deadline := time.Now().Add(60 * time.Second)
	conn.SetDeadline(deadline)
	peer.SetDeadline(deadline)

	var wg sync.WaitGroup
	var rerr error
	wg.Go(func() {
		h := sha256.New()
		var m int64
		m, rerr = io.Copy(h, peer)
		if rerr == nil && m != int64(n) {
			rerr = fmt.Errorf("received %d bytes of %d", m, n)
		}
		copy(got[:], h.Sum(nil))
	})
	h := sha256.New()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 256<<10)
	for left := n; left > 0; {
		k := min(left, len(buf))
		for i := 0; i < k; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < k; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		h.Write(buf[:k])
		if _, err := conn.Write(buf[:k]); err != nil {
			t.Fatalf("sending: %v (a stalled transfer means frames with bad checksums were dropped)", err)
		}
		left -= k
	}
	conn.(*net.TCPConn).CloseWrite()
	wg.Wait()
	if rerr != nil {
		t.Fatalf("receiving: %v", rerr)
	}
	copy(sent[:], h.Sum(nil))
	return sent, got
}

// capture records the frames a client wrote into its TAP (what the kernel
// received on it), with an AF_PACKET socket opened in the client's namespace.
type capture struct {
	fd      int
	stopc   chan struct{}
	done    chan struct{}
	longest atomic.Int64
	frames  atomic.Int64
}

func startCapture(t *testing.T, ns, dev string) *capture {
	t.Helper()
	c := &capture{stopc: make(chan struct{}), done: make(chan struct{})}
	if err := testutil.InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		proto := int(uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		c.fd = fd
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
	}); err != nil {
		t.Fatalf("capture on %s in %s: %v", dev, ns, err)
	}
	// A receive timeout lets the loop see stop without a second descriptor.
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(c.done)
		// MSG_TRUNC returns the frame's real length even when the buffer is
		// shorter, so a small buffer measures super-frames.
		buf := make([]byte, 256)
		close(ready)
		for {
			n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
			if err == unix.EAGAIN || err == unix.EINTR {
				select {
				case <-c.stopc:
					return
				default:
					continue
				}
			}
			if err != nil {
				return
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue // sent by the kernel to the client, not received from it
			}
			c.frames.Add(1)
			if int64(n) > c.longest.Load() {
				c.longest.Store(int64(n))
			}
		}
	}()
	<-ready
	return c
}

func (c *capture) stop() (longest, frames int64) {
	close(c.stopc)
	<-c.done
	unix.Close(c.fd)
	return c.longest.Load(), c.frames.Load()
}
