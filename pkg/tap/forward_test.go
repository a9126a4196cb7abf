// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package tap

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// tapPair is two TAP devices in two network namespaces the test creates,
// 198.18.90.1/24 on A and 198.18.90.2/24 on B, joined by a forwarder in the
// test: A's frames go to B through a Reader (so its batches and metadata are
// what crosses), B's go to A through the device's own Read. Nothing else
// links the namespaces, so every byte of a TCP stream between them crosses
// the forwarder.
type tapPair struct {
	t        testing.TB
	nsA, nsB string
	a, b     Device
	reader   *Reader
	// Counted by the A → B direction.
	superFrames, maxFrame, frames atomic.Int64
	udpSuper                      atomic.Int64
	wg                            sync.WaitGroup
}

const (
	pairA = "198.18.90.1"
	pairB = "198.18.90.2"
)

func requireNetns(t testing.TB) {
	t.Helper()
	skip := t.Skip
	if os.Getenv("CI") != "" {
		skip = t.Fatal
	}
	if os.Geteuid() != 0 {
		skip("needs root for network namespaces and TAP devices")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		skip("needs /dev/net/tun (modprobe tun, or --device /dev/net/tun in a container)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("needs the ip command to create named network namespaces")
	}
}

func newTAPPair(t testing.TB, oa, ob Options) *tapPair {
	requireNetns(t)
	sfx := make([]byte, 3)
	rand.Read(sfx)
	p := &tapPair{t: t, nsA: "hfta-" + hex.EncodeToString(sfx), nsB: "hftb-" + hex.EncodeToString(sfx)}
	for _, ns := range []string{p.nsA, p.nsB} {
		testutil.IP(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		testutil.IP(t, "-n", ns, "link", "set", "lo", "up")
	}
	open := func(ns, name, addr string, o Options) Device {
		var d Device
		if err := testutil.InNetns(ns, func() (err error) {
			if d, err = Open(name, o); err != nil {
				return err
			}
			for _, err := range []error{SetUp(name), AddAddress(name, addr+"/24")} {
				if err != nil {
					d.Close()
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	p.a = open(p.nsA, "hfa", pairA, oa)
	p.b = open(p.nsB, "hfb", pairB, ob)
	p.reader = NewReader(p.a, 1500+FrameOverhead)
	p.reader.Attach(&aToB{p: p})
	p.wg.Go(p.bToA)
	t.Cleanup(func() {
		p.reader.Close()
		p.a.Close()
		p.b.Close()
		<-p.reader.Done()
		p.wg.Wait()
	})
	return p
}

// aToB is the Reader's sink: it counts what A hands out and writes it to B,
// each frame behind its virtio_net_hdr again. Each of A's queues calls it.
type aToB struct {
	p   *tapPair
	mu  sync.Mutex
	buf [][]byte
	out [][]byte
}

func (s *aToB) WriteFramesGSO(frames [][]byte, metas []gso.Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	s.out = s.out[:0]
	for i, f := range frames {
		p.frames.Add(1)
		if metas[i].Type&^gso.TypeECN == gso.TypeTCPv4 && len(f) > 1514 {
			p.superFrames.Add(1)
		}
		if metas[i].Type == gso.TypeUDPL4 {
			p.udpSuper.Add(1)
		}
		if int64(len(f)) > p.maxFrame.Load() {
			p.maxFrame.Store(int64(len(f)))
		}
		if i == len(s.buf) {
			s.buf = append(s.buf, make([]byte, Headroom+ethdev.MaxSuperFrame))
		}
		b := s.buf[i]
		metas[i].PutVirtio(b[:Headroom])
		s.out = append(s.out, b[:Headroom+copy(b[Headroom:], f)])
	}
	_, err := p.b.Write(s.out, Headroom)
	return err
}

func (p *tapPair) bToA() {
	n := p.b.BatchSize()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+ethdev.MaxFrame(1500, p.b.Offload()))
	}
	sizes := make([]int, n)
	out := make([][]byte, n)
	for {
		k, err := p.b.Read(bufs, sizes, Headroom)
		if err != nil {
			return
		}
		for i := range k {
			out[i] = bufs[i][:Headroom+sizes[i]]
		}
		if _, err := p.a.Write(out[:k], Headroom); err != nil {
			return
		}
	}
}

// listen accepts one connection on B's address ip and hashes what it receives.
func (p *tapPair) listen(ip string) (addr string, got <-chan [32]byte, count <-chan int64) {
	var ln net.Listener
	if err := testutil.InNetns(p.nsB, func() (err error) { ln, err = net.Listen("tcp4", ip+":0"); return err }); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { ln.Close() })
	sum, n := make(chan [32]byte, 1), make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sum <- [32]byte{}
			n <- -1
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		h := sha256.New()
		k, _ := io.Copy(h, c)
		sum <- [32]byte(h.Sum(nil))
		n <- k
	}()
	return ln.Addr().String(), sum, n
}

func (p *tapPair) dial(addr string) net.Conn {
	var c net.Conn
	if err := testutil.InNetns(p.nsA, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 10*time.Second); return err }); err != nil {
		p.t.Fatal(err)
	}
	return c
}

// transfer sends size pseudo-random bytes from A to B's address ip and
// checks that B received exactly them.
func (p *tapPair) transfer(size int, ip string) {
	p.t.Helper()
	addr, sum, count := p.listen(ip)
	c := p.dial(addr)
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	rng := mrand.NewChaCha8([32]byte{1, 2, 3})
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(buf) {
		chunk := buf[:min(len(buf), left)]
		rng.Read(chunk)
		h.Write(chunk)
		if _, err := c.Write(chunk); err != nil {
			p.t.Fatalf("sending: %v", err)
		}
	}
	c.Close()
	if n := <-count; n != int64(size) {
		p.t.Fatalf("B received %d bytes, want %d", n, size)
	}
	if got := <-sum; got != [32]byte(h.Sum(nil)) {
		p.t.Fatal("B received different bytes than A sent")
	}
}

// With offloads on both TAPs, the kernel hands the forwarder TCP super-frames
// (far over the MTU, with GSO metadata) and takes them back whole; a 64 MiB
// stream arrives intact. Both TAPs have two queues: A is read by the
// Reader's goroutine per queue, B by the TAP's Read across its queues.
func TestSuperFramesCrossTwoOffloadTAPs(t *testing.T) {
	p := newTAPPair(t, Options{Queues: 2, Offload: true}, Options{Queues: 2, Offload: true})
	p.transfer(64<<20, pairB)
	st := StatsOf(p.b)
	t.Logf("A→B: %d frames, %d TCPv4 super-frames, longest %d bytes; A %+v; B %+v", p.frames.Load(), p.superFrames.Load(), p.maxFrame.Load(), StatsOf(p.a), st)
	if p.superFrames.Load() == 0 || p.maxFrame.Load() <= 1514 {
		t.Fatalf("no super-frame crossed (longest frame %d bytes): the kernel did not hand out TSO frames", p.maxFrame.Load())
	}
	if st.TxSplit != 0 {
		t.Errorf("B split %d frames: an offload TAP must take super-frames whole", st.TxSplit)
	}
}

// With offloads on A only, B cannot take A's super-frames: its Write splits
// them (gso.Split) into MTU-sized segments with full checksums, and the
// stream still arrives intact.
func TestSuperFramesSplitForTAPWithoutOffload(t *testing.T) {
	p := newTAPPair(t, Options{Offload: true}, Options{})
	p.transfer(64<<20, pairB)
	st := StatsOf(p.b)
	t.Logf("A→B: %d frames, %d TCPv4 super-frames, longest %d bytes; A %+v; B %+v", p.frames.Load(), p.superFrames.Load(), p.maxFrame.Load(), StatsOf(p.a), st)
	if p.superFrames.Load() == 0 {
		t.Fatal("A handed out no super-frame")
	}
	if st.TxSplit == 0 {
		t.Fatal("B split no frame, yet it has no offload")
	}
	if p.b.Offload().Any() {
		t.Fatalf("B reports offloads %+v without Options.Offload", p.b.Offload())
	}
}

// UDP segmentation offload (Linux 6.2 or later): a datagram burst sent with
// UDP_SEGMENT leaves A as one UDP super-frame, and B's socket receives every
// datagram intact, whether B takes the super-frame whole or its Write splits it.
func TestUDPSuperFrames(t *testing.T) {
	for _, c := range []struct {
		name string
		ob   Options
	}{{"whole", Options{Offload: true}}, {"split", Options{}}} {
		t.Run(c.name, func(t *testing.T) {
			p := newTAPPair(t, Options{Offload: true}, c.ob)
			if !p.a.Offload().USO {
				t.Skip("this kernel refuses TUN_F_USO4|USO6 (before 6.2)")
			}
			var rx, tx *net.UDPConn
			if err := testutil.InNetns(p.nsB, func() (err error) {
				rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(pairB)})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			_ = rx.SetReadBuffer(4 << 20)
			if err := testutil.InNetns(p.nsA, func() (err error) {
				tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			const seg, segs = 1400, 30
			rc, err := tx.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) }); err != nil || serr != nil {
				t.Fatalf("UDP_SEGMENT: %v %v", err, serr)
			}
			burst := make([]byte, seg*segs)
			got := make([]byte, 2*seg)
			for round := range 10 {
				for i := range burst {
					burst[i] = byte(i/seg + round*segs)
				}
				// The first burst may wait in A's stack for the neighbour's
				// ARP answer, which the forwarder carries: no datagram is lost.
				if _, err := tx.Write(burst); err != nil {
					t.Fatal(err)
				}
				_ = rx.SetReadDeadline(time.Now().Add(10 * time.Second))
				for i := range segs {
					n, err := rx.Read(got)
					if err != nil {
						t.Fatalf("round %d: datagram %d of %d: %v", round, i+1, segs, err)
					}
					if n != seg || got[0] != byte(i+round*segs) || got[n-1] != got[0] {
						t.Fatalf("round %d: datagram %d is %d bytes starting %d, want %d bytes of %d", round, i, n, got[0], seg, byte(i+round*segs))
					}
				}
			}
			t.Logf("A→B: %d UDP super-frames; B %+v", p.udpSuper.Load(), StatsOf(p.b))
			if p.udpSuper.Load() == 0 {
				t.Error("A handed out no UDP super-frame")
			}
			if split := StatsOf(p.b).TxSplit; (split == 0) == !c.ob.Offload {
				t.Errorf("B split %d frames with offload %v", split, c.ob.Offload)
			}
		})
	}
}

// A Read on a closed TAP, and one blocked when it closes, return
// ethdev.ErrClosed: Close is how a client stops its reader.
func TestCloseEndsBlockedRead(t *testing.T) {
	for _, o := range []Options{{}, {Queues: 2, Offload: true}} {
		inPrivateNetns(t, func() {
			d, err := Open("", o)
			if err != nil {
				t.Error(err)
				return
			}
			errc := make(chan error, 1)
			go func() {
				bufs := [][]byte{make([]byte, Headroom+ethdev.MaxSuperFrame)}
				_, err := d.Read(bufs, make([]int, 1), Headroom)
				errc <- err
			}()
			d.Close()
			select {
			case err := <-errc:
				if !errors.Is(err, ethdev.ErrClosed) {
					t.Errorf("%+v: Read after Close = %v, want ethdev.ErrClosed", o, err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%+v: Read still blocked 5 s after Close", o)
			}
		})
	}
}

// BenchmarkTAPForward is one TCP stream from A to B through the forwarder,
// offloads on both TAPs against off on both (one frame per read and write,
// the way a water TAP moved them), and A with offloads to B without (the
// split fallback). Reports Gbit/s and the process's CPU seconds per GiB.
func BenchmarkTAPForward(b *testing.B) {
	for _, c := range []struct {
		name   string
		oa, ob Options
	}{
		{"offload", Options{Offload: true}, Options{Offload: true}},
		{"split", Options{Offload: true}, Options{}},
		{"plain", Options{}, Options{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := newTAPPair(b, c.oa, c.ob)
			addr, _, count := p.listen(pairB)
			conn := p.dial(addr)
			buf := make([]byte, 1<<20)
			rand.Read(buf)
			b.SetBytes(int64(len(buf)))
			start := time.Now()
			cpu0, _ := testutil.ProcessCPU()
			for b.Loop() {
				if _, err := conn.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			conn.Close()
			if n := <-count; n != int64(b.N)*int64(len(buf)) {
				b.Fatalf("received %d bytes, want %d", n, int64(b.N)*int64(len(buf)))
			}
			b.ReportMetric(float64(b.N)*float64(len(buf))*8/time.Since(start).Seconds()/1e9, "Gbit/s")
			// Sender, receiver and forwarder all run in this process, so its
			// CPU time per GiB is the steadier figure on a shared machine.
			if cpu1, ok := testutil.ProcessCPU(); ok {
				b.ReportMetric((cpu1-cpu0).Seconds()/(float64(b.N)*float64(len(buf))/(1<<30)), "cpu-s/GiB")
			}
			b.Logf("%s: %d frames A→B, %d super-frames", c.name, p.frames.Load(), p.superFrames.Load())
		})
	}
}
