// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

// intoSink collects what ReadFramesInto reads, each frame in a buffer of its
// own, the way the member reads into pooled hub frames.
type intoSink struct {
	frames [][]byte
	metas  []gso.Meta
	next   []byte
	skip   int // frames of this length get no buffer (nil: skipped)
}

func (s *intoSink) FrameBuffer(n int, m gso.Meta) []byte {
	if n == s.skip {
		return nil
	}
	s.next = make([]byte, n+7) // longer than asked: the Conn uses n
	s.metas = append(s.metas, m)
	return s.next
}

func (s *intoSink) FrameDone() {
	s.frames = append(s.frames, s.next[:len(s.next)-7])
	s.next = nil
}

// TestWriteFramesRoomReadFramesInto: frames sent from their own buffers with
// the header in their room, mixed with frames copied into batches (short,
// no room, too little room), arrive whole and in order with their metadata,
// read straight into the reader's buffers; the frames' own bytes are never
// written and a frame the sink refuses is skipped.
func TestWriteFramesRoomReadFramesInto(t *testing.T) {
	for _, gsoOn := range []bool{false, true} {
		req := okLogin
		if gsoOn {
			req.Capabilities = CapGSO
		}
		client, member := loginPair(t, req, func(req *LoginRequest) *LoginResult {
			return &LoginResult{Code: OK, MaxFrame: 65535, Capabilities: req.Capabilities & CapGSO}
		})
		super, sm := offloadFrame(false, false, 60000, 1448)
		mk := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
		var frames, rooms [][]byte
		var metas []gso.Meta
		add := func(f []byte, m gso.Meta, room int) {
			var r []byte
			if room >= 0 {
				buf := make([]byte, room+len(f))
				copy(buf[room:], f)
				r = buf
				f = buf[room:]
			}
			frames, metas, rooms = append(frames, f), append(metas, m), append(rooms, r)
		}
		add(mk(1400, 1), gso.Meta{}, 64)             // short: copied
		add(mk(30000, 2), gso.Meta{}, DirectHeader)  // direct
		add(mk(20000, 3), gso.Meta{}, -1)            // no room: copied
		add(mk(9000, 4), gso.Meta{}, DirectHeader-1) // too little room: copied
		add(mk(1000, 5), gso.Meta{}, 0)              // short
		add(mk(12345, 6), gso.Meta{}, 100)           // direct
		add(mk(777, 9), gso.Meta{}, -1)              // skipped by the sink
		if gsoOn {
			add(super, sm, DirectHeader) // a super-frame, direct, with its metadata
		}
		want := make([][]byte, len(frames))
		for i, f := range frames {
			want[i] = bytes.Clone(f)
		}
		done := make(chan *intoSink)
		go func() {
			s := &intoSink{skip: 777}
			for len(s.frames) < len(frames)-1 {
				if _, err := member.ReadFramesInto(s); err != nil {
					t.Error(err)
					break
				}
			}
			done <- s
		}()
		if err := client.WriteFramesRoom(frames, metas, rooms); err != nil {
			t.Fatal(err)
		}
		var s *intoSink
		select {
		case s = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("frames did not arrive")
		}
		j := 0
		for i, f := range frames {
			if !bytes.Equal(f, want[i]) {
				t.Fatalf("gso=%v: frame %d was written to", gsoOn, i)
			}
			if len(f) == 777 {
				continue
			}
			if j >= len(s.frames) || !bytes.Equal(s.frames[j], f) {
				t.Fatalf("gso=%v: frame %d (%d bytes) did not arrive intact", gsoOn, i, len(f))
			}
			if gsoOn && s.metas[j] != metas[i] {
				t.Fatalf("gso=%v: frame %d metadata %+v, want %+v", gsoOn, i, s.metas[j], metas[i])
			}
			j++
		}
		st := member.Stats()
		if st.RxFrames != uint64(len(frames)-1) {
			t.Fatalf("gso=%v: RxFrames %d, want %d", gsoOn, st.RxFrames, len(frames)-1)
		}
	}
}
