// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import "testing"

// FuzzForward feeds arbitrary bytes as frames from arbitrary ports (session,
// peer, peer) and checks that the hub never panics, never hands a frame back
// to its sender or from a peer to a peer, counts every frame it received,
// and leaks no frame.
func FuzzForward(f *testing.F) {
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	f.Add([]byte{1, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, 0, 5, 0x08, 0x00, 0xaa})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		frameTracking.live.Store(0)
		frameTracking.on.Store(true)
		defer frameTracking.on.Store(false)

		h := New("fuzz", Options{MaxMACs: 4, QueueLen: 4, MaxFrame: 64})
		ports := []*Port{h.Attach(PortSession, "0"), h.Attach(PortPeer, "1"), h.Attach(PortPeer, "2")}
		// Input: repeated [port byte][length byte][frame bytes].
		var sent uint64
		for len(data) >= 2 {
			from := int(data[0]) % len(ports)
			n := min(int(data[1]), len(data)-2)
			fr := NewFrameSize(n + 1)
			fr.B = append(fr.B[:0], data[2:2+n]...)
			// Mark the sender in the last byte so receivers can check it;
			// it is beyond every header field the switch reads.
			fr.B = append(fr.B, byte(from))
			data = data[2+n:]
			ports[from].Forward([]*Frame{fr})
			sent++
			for i, p := range ports {
				for _, g := range drainRaw(p) {
					sender := int(g[len(g)-1])
					if sender == i {
						t.Fatalf("frame returned to its sender %d", i)
					}
					if p.Kind() == PortPeer && ports[sender].Kind() == PortPeer {
						t.Fatalf("frame from peer %d reached peer %d", sender, i)
					}
				}
			}
		}
		if s := h.Stats(); s.FramesIn != sent {
			t.Fatalf("FramesIn %d, sent %d", s.FramesIn, sent)
		}
		h.Close()
		if n := frameTracking.live.Load(); n != 0 {
			t.Fatalf("%d frames leaked", n)
		}
	})
}

// drainRaw empties p's queue, returning copies of the frames' bytes.
func drainRaw(p *Port) [][]byte {
	var out [][]byte
	buf := make([]*Frame, 4)
	for n := p.TryDequeue(buf); n > 0; n = p.TryDequeue(buf) {
		for _, f := range buf[:n] {
			out = append(out, append([]byte(nil), f.B...))
			f.Release()
		}
	}
	return out
}
