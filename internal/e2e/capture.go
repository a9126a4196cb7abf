// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Capture records the frames a client's TAP receives (what the hub delivers),
// with a raw AF_PACKET socket opened inside the client's namespace.
type Capture struct {
	fd     int
	mu     sync.Mutex
	frames [][]byte
	stop   chan struct{}
	done   chan struct{}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// StartCapture starts capturing on the client's TAP until Stop.
func (c *Client) StartCapture(t testing.TB) *Capture {
	t.Helper()
	type opened struct {
		fd  int
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		// A socket belongs to the namespace it was created in: create it on a
		// thread moved into the client's namespace, then move the thread back.
		// The thread must not simply end with this goroutine: the client
		// processes carry Pdeathsig, which fires when the thread that forked
		// them exits, and that may be this one.
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- opened{err: err}
			return
		}
		defer orig.Close()
		defer func() {
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			} // else the thread stays locked and ends with the goroutine
		}()
		nsf, err := os.Open("/var/run/netns/" + c.NS)
		if err != nil {
			ch <- opened{err: err}
			return
		}
		defer nsf.Close()
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- opened{err: fmt.Errorf("setns %s: %w", c.NS, err)}
			return
		}
		ifi, err := net.InterfaceByName(c.Tap)
		if err != nil {
			ch <- opened{err: err}
			return
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			ch <- opened{err: fmt.Errorf("AF_PACKET socket: %w", err)}
			return
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			ch <- opened{err: fmt.Errorf("binding to %s: %w", c.Tap, err)}
			return
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		ch <- opened{fd: fd}
	}()
	o := <-ch
	if o.err != nil {
		t.Fatalf("capturing on %s in %s: %v", c.Tap, c.NS, o.err)
	}
	cp := &Capture{fd: o.fd, stop: make(chan struct{}), done: make(chan struct{})}
	go cp.loop()
	t.Cleanup(func() { cp.Stop() })
	return cp
}

func (cp *Capture) loop() {
	defer close(cp.done)
	defer unix.Close(cp.fd)
	buf := make([]byte, 65536)
	for {
		select {
		case <-cp.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(cp.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		// Only what arrived on the TAP, not what this namespace sent.
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		cp.mu.Lock()
		cp.frames = append(cp.frames, append([]byte(nil), buf[:n]...))
		cp.mu.Unlock()
	}
}

// Stop ends the capture and returns the frames received.
func (cp *Capture) Stop() [][]byte {
	select {
	case <-cp.stop:
	default:
		close(cp.stop)
	}
	<-cp.done
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.frames
}

// MAC reads the TAP's hardware address inside the namespace.
func (c *Client) MAC(t testing.TB) net.HardwareAddr {
	t.Helper()
	out, err := c.exec(5*time.Second, "cat", "/sys/class/net/"+c.Tap+"/address")
	if err != nil {
		t.Fatalf("reading %s's MAC: %v: %s", c.Name, err, out)
	}
	mac, err := net.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// DescribeFrame is a one-line summary of an Ethernet frame for test messages.
func DescribeFrame(f []byte) string {
	if len(f) < 14 {
		return fmt.Sprintf("runt frame of %d bytes", len(f))
	}
	s := fmt.Sprintf("%s → %s type %#04x len %d", net.HardwareAddr(f[6:12]), net.HardwareAddr(f[0:6]), binary.BigEndian.Uint16(f[12:14]), len(f))
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0806:
		if len(f) >= 42 {
			s += fmt.Sprintf(" ARP op %d %s asks/tells %s", binary.BigEndian.Uint16(f[20:22]), net.IP(f[28:32]), net.IP(f[38:42]))
		}
	case 0x0800:
		if len(f) >= 34 {
			s += fmt.Sprintf(" IPv4 %s → %s proto %d", net.IP(f[26:30]), net.IP(f[30:34]), f[23])
		}
	}
	return s
}

// FramesFrom returns the frames whose source MAC is one of macs.
func FramesFrom(frames [][]byte, macs ...net.HardwareAddr) [][]byte {
	var out [][]byte
	for _, f := range frames {
		if len(f) < 12 {
			continue
		}
		for _, m := range macs {
			if bytes.Equal(f[6:12], m) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}
