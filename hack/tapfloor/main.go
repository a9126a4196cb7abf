// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command tapfloor is the floor of the TAP → member → TAP path on this
// machine: the same three processes, the same offloaded TAP edges (pkg/tap,
// 64 KiB super-frames with their virtio headers) and the same two loopback
// TCP connections as `hubfleet connect` → member → `hubfleet connect`, with
// nothing else — no TLS, no login, no hub, no framing beyond a length.
// --seal adds AES-128-GCM on 16 KiB records at each of the four ends, as
// TLS 1.3 does (the member opens what one client sealed and seals it again
// for the other); --seal=e2e seals at the clients only and the member
// passes the records on unopened: two AES passes instead of four, a design
// in which the member could not read the frames it switches (ours reads
// them). Without --seal it is the ceiling of any user-space tunnel with a
// middle process here; with it, of a plain implementation of ours.
//
// It takes the hubfleet command lines bench-tap runs, so it is a bench-tap
// variant as it stands:
//
//	go build -o /tmp/tapfloor ./hack/tapfloor
//	go run ./hack/bench-tap -variants 'floor=/tmp/tapfloor;e2e=/tmp/tapfloor,--seal=e2e,--seal=e2e;sealed=/tmp/tapfloor,--seal,--seal;hubfleet=/tmp/hf,--udp=false,--udp=false'
//
// `member --config FILE` relays between the first two clients that connect to
// the config's listen address; `connect --server ADDR --tap NAME [--seal[=e2e]]`
// opens TAP NAME and carries its frames. Other flags are ignored. The key is
// fixed and shared by every hop: this is a measuring stick, not a tunnel.
package main

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/tap"
)

// Modes, which a client's first byte tells the relay.
const (
	clear    = iota // nothing sealed
	sealed          // each hop sealed: the relay opens and seals again
	endToEnd        // the clients seal, the relay passes records on unopened
)

// record is the most plaintext one sealed record carries: TLS 1.3's limit.
const record = 16 << 10

// stream is how much each end reads from its socket at once.
const stream = 256 << 10

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: tapfloor member --config FILE | connect --server ADDR --tap NAME [--seal[=e2e]]"))
	}
	// "--flag", "--flag=value" and "--flag value", as bench-tap writes them.
	flags := map[string]string{}
	args := os.Args[2:]
	for i := 0; i < len(args); i++ {
		k, ok := strings.CutPrefix(args[i], "--")
		if !ok {
			continue
		}
		k, v, hasValue := strings.Cut(k, "=")
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			v = args[i+1]
			i++
		}
		flags[k] = v
	}
	mode := byte(clear)
	if v, ok := flags["seal"]; ok {
		mode = sealed
		if v == "e2e" {
			mode = endToEnd
		}
	}
	switch os.Args[1] {
	case "member":
		fail(relay(flags["config"]))
	case "connect":
		fail(edge(flags["server"], flags["tap"], mode))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapfloor:", err)
		os.Exit(1)
	}
}

// aead is AES-128-GCM with a counter nonce for one direction of one hop.
// Every hop uses the same fixed key: each direction's counter runs from 1 on
// both of its ends, which is all a measuring stick needs.
type aead struct {
	c     cipher.AEAD
	nonce [12]byte
	n     uint64
}

func newAEAD() *aead {
	b, err := aes.NewCipher(make([]byte, 16))
	fail(err)
	c, err := cipher.NewGCM(b)
	fail(err)
	return &aead{c: c}
}

func (a *aead) next() []byte {
	a.n++
	binary.BigEndian.PutUint64(a.nonce[4:], a.n)
	return a.nonce[:]
}

// sealer writes byte slices as records, [u32 length][payload (+ tag)], in
// one write(2) per call.
type sealer struct {
	c   net.Conn
	a   *aead // nil: in the clear
	buf []byte
	vec net.Buffers
}

func (s *sealer) write(ps ...[]byte) error {
	if s.a == nil {
		// In the clear the records are the slices themselves, written with
		// writev: no copy in user space at all.
		s.vec = s.vec[:0]
		s.buf = s.buf[:0]
		for _, p := range ps {
			for len(p) > 0 {
				n := min(len(p), record)
				s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(n))
				s.vec = append(s.vec, s.buf[len(s.buf)-4:], p[:n])
				p = p[n:]
			}
		}
		// WriteTo consumes the slice it is called on: a copy of the
		// header keeps s.vec's array for the next call.
		vec := s.vec
		_, err := vec.WriteTo(s.c)
		return err
	}
	s.buf = s.buf[:0]
	for _, p := range ps {
		for len(p) > 0 {
			n := min(len(p), record)
			s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(n+s.a.c.Overhead()))
			s.buf = s.a.c.Seal(s.buf, s.a.next(), p[:n], nil)
			p = p[n:]
		}
	}
	_, err := s.c.Write(s.buf)
	return err
}

// opener reads records back.
type opener struct {
	r *bufio.Reader
	a *aead
}

// read returns the next record's plaintext (opened in place), valid until
// the next read.
func (o *opener) read() ([]byte, error) {
	h, err := o.r.Peek(4)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(h))
	if n > record+64 {
		return nil, fmt.Errorf("record of %d bytes", n)
	}
	if _, err := o.r.Discard(4); err != nil {
		return nil, err
	}
	b, err := o.r.Peek(n)
	if err != nil {
		return nil, err
	}
	_, _ = o.r.Discard(n) // within what Peek buffered: b stays valid
	if o.a == nil {
		return b, nil
	}
	return o.a.c.Open(b[:0], o.a.next(), b, nil)
}

// relay is the member: two clients, each one's records opened and sent on
// to the other (sealed again when they came sealed), in batches: what one
// socket read brought, one write, as the member's writer does.
func relay(config string) error {
	y, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var cfg struct {
		Listen string `json:"listen"`
	}
	if err := yaml.Unmarshal(y, &cfg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	var conns [2]net.Conn
	var modes [2]byte
	for i := 0; i < len(conns); {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		// bench-tap's readiness probe connects and closes: not a client.
		var hello [1]byte
		if _, err := io.ReadFull(c, hello[:]); err != nil {
			c.Close()
			continue
		}
		conns[i], modes[i] = c, hello[0]
		i++
	}
	if modes[0] != modes[1] {
		return errors.New("the clients seal differently")
	}
	var wg sync.WaitGroup
	for i := range conns {
		from, to := conns[i], conns[1-i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if modes[0] == endToEnd {
				// Whatever one read(2) brought goes on in one write(2).
				buf := make([]byte, stream)
				for {
					n, err := from.Read(buf)
					if err == nil {
						_, err = to.Write(buf[:n])
					}
					if err != nil {
						fmt.Fprintln(os.Stderr, "tapfloor: relay:", err)
						return
					}
				}
			}
			o := &opener{r: bufio.NewReaderSize(from, stream)}
			s := &sealer{c: to, buf: make([]byte, 0, 2*stream)}
			if modes[0] == sealed {
				o.a, s.a = newAEAD(), newAEAD()
			}
			// The plaintext is copied once, out of the socket buffer, as
			// the member copies each frame into its hub frame.
			batch := make([]byte, 0, stream)
			for {
				p, err := o.read()
				if err != nil {
					fmt.Fprintln(os.Stderr, "tapfloor: relay:", err)
					return
				}
				batch = append(batch, p...)
				if o.r.Buffered() >= 4 && len(batch) < stream-record {
					continue
				}
				if err := s.write(batch); err != nil {
					fmt.Fprintln(os.Stderr, "tapfloor: relay:", err)
					return
				}
				batch = batch[:0]
			}
		}()
	}
	wg.Wait()
	return nil
}

// edge is a client: its TAP's frames, each as [u32 length][virtio header +
// frame], go to the relay; what comes back goes to the TAP.
func edge(server, name string, mode byte) error {
	dev, err := tap.Open(name, tap.Options{Queues: 1, Offload: true})
	if err != nil {
		return err
	}
	c, err := net.Dial("tcp", server)
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte{mode}); err != nil {
		return err
	}
	o := &opener{r: bufio.NewReaderSize(c, stream)}
	s := &sealer{c: c, buf: make([]byte, 0, 2*stream)}
	if mode != clear {
		o.a, s.a = newAEAD(), newAEAD()
	}
	errc := make(chan error, 2)
	go func() { errc <- tapToNet(dev, s) }()
	go func() { errc <- netToTap(dev, o) }()
	return <-errc
}

// tapToNet reads a batch of frames and sends it in one write: sealed
// straight from the read buffers, as the client's TLS writes do.
func tapToNet(dev tap.Device, s *sealer) error {
	const off = 4 + gso.VirtioLen
	n := dev.BatchSize()
	bufs, sizes := make([][]byte, n), make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, off+65535+64)
	}
	out := make([][]byte, 0, n)
	for {
		k, err := dev.Read(bufs, sizes, off)
		if err != nil {
			return err
		}
		out = out[:0]
		for i := range k {
			binary.BigEndian.PutUint32(bufs[i][:4], uint32(gso.VirtioLen+sizes[i]))
			out = append(out, bufs[i][:off+sizes[i]])
		}
		if err := s.write(out...); err != nil {
			return err
		}
	}
}

// netToTap puts the records' plaintext together into frames (one copy, as
// the client's TLS reads make) and writes each batch of whole frames.
func netToTap(dev tap.Device, o *opener) error {
	const off = gso.VirtioLen
	bufs := make([][]byte, 0, 64)
	pend := make([]byte, 0, 1<<20)
	start := 0 // pend[start:] is not yet written
	for {
		p, err := o.read()
		if err != nil {
			return err
		}
		if len(pend)+len(p) > cap(pend) {
			// Move the partial frame to the front; it is under 64 KiB.
			pend = append(pend[:0], pend[start:]...)
			start = 0
		}
		pend = append(pend, p...)
		bufs = bufs[:0]
		for len(pend)-start >= 4 {
			n := int(binary.BigEndian.Uint32(pend[start:]))
			if len(pend)-start < 4+n {
				break
			}
			bufs = append(bufs, pend[start+4:start+4+n])
			start += 4 + n
		}
		// A TAP takes one frame per write(2) whatever the batch, so frames
		// go out as soon as they are whole.
		if len(bufs) > 0 {
			if _, err := dev.Write(bufs, off); err != nil {
				return err
			}
		}
		if start == len(pend) {
			pend, start = pend[:0], 0
		}
	}
}
