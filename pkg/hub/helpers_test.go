// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"encoding/binary"
	"testing"
	"time"
)

const (
	macA  = 0x02000000000a
	macB  = 0x02000000000b
	macC  = 0x02000000000c
	bcast = 0xffffffffffff
	mcast = 0x01005e000001 // IPv4 multicast 224.0.0.1
	untag = -1
)

// trackFrames counts frames handed out during the test and fails it if any
// is still referenced when the test ends (after its other cleanups, such as
// closing hubs, have run).
func trackFrames(t testing.TB) {
	t.Helper()
	frameTracking.live.Store(0)
	frameTracking.on.Store(true)
	t.Cleanup(func() {
		frameTracking.on.Store(false)
		if n := frameTracking.live.Load(); n != 0 {
			t.Errorf("%d frames still referenced at the end of the test", n)
		}
	})
}

func liveFrames() int64 { return frameTracking.live.Load() }

// ethFrame builds a frame of size bytes from src to dst, with an 802.1Q tag
// when vlan >= 0. The byte after the header holds tag, to tell frames apart.
func ethFrame(dst, src uint64, vlan int, size int, tag byte) *Frame {
	f := NewFrameSize(size)
	b := f.Buf()[:size]
	clear(b)
	putMAC(b[0:], dst)
	putMAC(b[6:], src)
	hdr := 12
	if vlan >= 0 {
		binary.BigEndian.PutUint16(b[12:], tpid8021Q)
		binary.BigEndian.PutUint16(b[14:], uint16(vlan))
		hdr = 16
	}
	if size >= hdr+2 {
		binary.BigEndian.PutUint16(b[hdr:], 0x0800)
	}
	if size > hdr+2 {
		b[hdr+2] = tag
	}
	f.SetLen(size)
	return f
}

func putMAC(b []byte, mac uint64) {
	binary.BigEndian.PutUint16(b, uint16(mac>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(mac))
}

// send forwards one 64-byte untagged frame from src to dst on p.
func send(p *Port, dst, src uint64) { p.Forward([]*Frame{ethFrame(dst, src, untag, 64, 0)}) }

// drain empties p's queue and returns each frame's (dst, src) and tag byte,
// releasing the frames.
type got struct {
	dst, src uint64
	tag      byte
}

func drain(p *Port) []got {
	var out []got
	buf := make([]*Frame, 16)
	for {
		n := p.TryDequeue(buf)
		if n == 0 {
			return out
		}
		for _, f := range buf[:n] {
			b := f.Bytes()
			g := got{dst: mac48(b), src: mac48(b[6:])}
			hdr := 14
			if binary.BigEndian.Uint16(b[12:]) == tpid8021Q {
				hdr = 18
			}
			if len(b) > hdr {
				g.tag = b[hdr]
			}
			out = append(out, g)
			f.Release()
		}
	}
}

// expectFrames fails unless each port received exactly want[i] frames.
func expectFrames(t *testing.T, what string, ports []*Port, want ...int) {
	t.Helper()
	for i, p := range ports {
		if n := len(drain(p)); n != want[i] {
			t.Errorf("%s: port %s received %d frames, want %d", what, p.Label(), n, want[i])
		}
	}
}

func newTestHub(t testing.TB, opt Options) *Hub {
	h := New(t.Name(), opt)
	t.Cleanup(h.Close)
	return h
}

// fakeClock is a manually advanced clock for Options.Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)} }
