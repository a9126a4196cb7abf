// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command udpwan is the UDP path tests' and benchmark's WAN: it joins two
// interfaces of its network namespace at layer 2, frame by frame, delaying,
// dropping, duplicating, reordering and rate-limiting as tc netem would.
// It exists because the test machine's kernel has no sch_netem. Frames
// arrive with their offload metadata (PACKET_VNET_HDR): TCP super-packets and
// UDP GSO trains are cut into wire-sized frames with pkg/gso first, so loss
// and delay apply to each frame as on a real link.
//
//	udpwan -a IF -b IF [-delay 20ms] [-loss 0.02] [-dup 0.2] [-reorder 0.25] [-rate 200e6]
//
// Every impairment applies to each direction. SIGUSR1 re-reads the settings
// from the file named by -control (one line of the same flags), so a
// benchmark changes the WAN without cutting it. SIGUSR2 prints the counts
// so far: wire frames in, dropped by the emulated loss, dropped by the
// queue limit, and dropped by the kernel before udpwan read them (its
// AF_PACKET sockets' receive buffers: loss the machine adds, not the WAN).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

type params struct {
	delay              time.Duration
	loss, dup, reorder float64
	rate               float64 // bits per second, 0: unlimited
	queue              int     // frames waiting per direction
}

var cur atomic.Pointer[params]

func parse(args []string) (*params, string, string, string, error) {
	fs := flag.NewFlagSet("udpwan", flag.ContinueOnError)
	p := &params{}
	a := fs.String("a", "", "first interface")
	b := fs.String("b", "", "second interface")
	ctl := fs.String("control", "", "file with flags re-read on SIGUSR1")
	fs.DurationVar(&p.delay, "delay", 0, "one-way delay per direction")
	fs.Float64Var(&p.loss, "loss", 0, "probability a frame is dropped")
	fs.Float64Var(&p.dup, "dup", 0, "probability a frame is sent twice")
	fs.Float64Var(&p.reorder, "reorder", 0, "probability a frame skips the delay (sent at once: reordered)")
	fs.Float64Var(&p.rate, "rate", 0, "link rate in bit/s (0: unlimited)")
	fs.IntVar(&p.queue, "queue", 20000, "frames queued per direction before tail drop")
	err := fs.Parse(args)
	return p, *a, *b, *ctl, err
}

type frame struct {
	due time.Time
	b   []byte
}

type link struct {
	in, out int
	// Counts, for SIGUSR2.
	frames, lost, queueDrops, sockDrops atomic.Uint64
	mu                                  sync.Mutex
	q                                   []frame
	wake                                chan struct{}
	sent                                time.Time // when the rate limiter frees the link
}

func open(name string) int {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		fail(err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	if err != nil {
		fail(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		fail(fmt.Errorf("PACKET_VNET_HDR: %w", err))
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		fail(err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		fail(err)
	}
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "udpwan:", err)
	os.Exit(1)
}

// receive reads frames from l.in, cuts offload frames and queues them.
func (l *link) receive() {
	buf := make([]byte, 70000)
	scratch := make([]byte, 70000)
	for {
		n, _, err := unix.Recvfrom(l.in, buf, 0)
		if err != nil {
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			fail(err)
		}
		if n <= gso.VirtioLen {
			continue
		}
		m := gso.ParseVirtio(buf[:gso.VirtioLen])
		pkt := buf[gso.VirtioLen:n]
		if m.IsZero() || m.Type == gso.TypeNone && m.Flags&gso.NeedsCsum == 0 {
			l.admit(pkt)
			continue
		}
		gso.Split(m, pkt, scratch, l.admit)
	}
}

// admit applies loss, duplication and reordering to one wire frame.
func (l *link) admit(pkt []byte) {
	p := cur.Load()
	l.frames.Add(1)
	if p.loss > 0 && rand.Float64() < p.loss {
		l.lost.Add(1)
		return
	}
	copies := 1
	if p.dup > 0 && rand.Float64() < p.dup {
		copies = 2
	}
	now := time.Now()
	due := now.Add(p.delay)
	if p.reorder > 0 && rand.Float64() < p.reorder {
		due = now.Add(p.delay / 2) // overtakes the frames queued before it
	}
	l.mu.Lock()
	for range copies {
		if len(l.q) >= p.queue {
			l.queueDrops.Add(1)
			break
		}
		b := make([]byte, gso.VirtioLen+len(pkt))
		copy(b[gso.VirtioLen:], pkt)
		f := frame{due: due, b: b}
		// Keep the queue sorted by due time: most frames go at the end.
		i := len(l.q)
		for i > 0 && l.q[i-1].due.After(due) {
			i--
		}
		l.q = append(l.q, frame{})
		copy(l.q[i+1:], l.q[i:])
		l.q[i] = f
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// send writes queued frames when they are due, at the link rate.
func (l *link) send() {
	t := time.NewTimer(time.Hour)
	for {
		l.mu.Lock()
		var next time.Time
		var f frame
		have := false
		if len(l.q) > 0 {
			f = l.q[0]
			next = f.due
			if l.sent.After(next) {
				next = l.sent
			}
			if !time.Now().Before(next) {
				l.q = l.q[1:]
				have = true
			}
		}
		l.mu.Unlock()
		if have {
			p := cur.Load()
			if p.rate > 0 {
				tx := time.Duration(float64(len(f.b)-gso.VirtioLen+24) * 8 / p.rate * float64(time.Second))
				if now := time.Now(); l.sent.Before(now) {
					l.sent = now
				}
				l.sent = l.sent.Add(tx)
			}
			for {
				// ENOBUFS is the far end dropping the frame (a veth whose
				// peer's MTU is smaller): the frame is lost, as on a wire.
				// Retrying it would stall the link for good.
				_, err := unix.Write(l.out, f.b)
				if err == unix.EAGAIN || err == unix.EINTR {
					continue
				}
				break
			}
			continue
		}
		d := time.Hour
		if !next.IsZero() {
			d = time.Until(next)
		}
		t.Reset(d)
		select {
		case <-t.C:
		case <-l.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}
}

func main() {
	p, a, b, ctl, err := parse(os.Args[1:])
	if err != nil || a == "" || b == "" {
		fmt.Fprintln(os.Stderr, "usage: udpwan -a IF -b IF [-delay D] [-loss P] [-dup P] [-reorder P] [-rate BPS] [-control FILE]")
		os.Exit(2)
	}
	cur.Store(p)
	fa, fb := open(a), open(b)
	links := []*link{{in: fa, out: fb, wake: make(chan struct{}, 1)}, {in: fb, out: fa, wake: make(chan struct{}, 1)}}
	for _, l := range links {
		go l.receive()
		go l.send()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	fmt.Println("udpwan ready")
	for s := range sig {
		if s == syscall.SIGUSR2 {
			for i, l := range links {
				// PACKET_STATISTICS counts since the last read.
				if st, err := unix.GetsockoptTpacketStats(l.in, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
					l.sockDrops.Add(uint64(st.Drops))
				}
				fmt.Printf("udpwan stats %s: frames %d lost %d queue-drops %d socket-drops %d\n",
					[]string{"a-to-b", "b-to-a"}[i], l.frames.Load(), l.lost.Load(), l.queueDrops.Load(), l.sockDrops.Load())
			}
			continue
		}
		if ctl == "" {
			continue
		}
		data, err := os.ReadFile(ctl)
		if err != nil {
			fmt.Fprintln(os.Stderr, "udpwan:", err)
			continue
		}
		np, _, _, _, err := parse(strings.Fields(string(data)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "udpwan:", err)
			continue
		}
		cur.Store(np)
		fmt.Printf("udpwan: delay %v loss %v dup %v reorder %v rate %v\n", np.delay, np.loss, np.dup, np.reorder, np.rate)
	}
}
