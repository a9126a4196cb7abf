// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import (
	"testing"

	"github.com/hubfleet/hubfleet/pkg/gso"
)

var superMeta = gso.Meta{Flags: gso.NeedsCsum, Type: gso.TypeTCPv4, HdrLen: 54, Size: 1448, CsumStart: 34, CsumOffset: 16}

// A super-frame is bounded by gso.MaxSuperFrame, not by MaxFrame; an ordinary
// frame of the same length, or a super-frame past the hard limit, is oversize.
func TestSuperFramesPassTheMaxFrameLimit(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	a, b := h.Attach(PortSession, "a"), h.Attach(PortSession, "b")

	super := ethFrame(bcast, macA, untag, 60000, 1)
	super.Meta = superMeta
	plain := ethFrame(bcast, macA, untag, 60000, 2)
	tooLong := ethFrame(bcast, macA, untag, gso.MaxSuperFrame+1, 3)
	tooLong.Meta = superMeta
	a.Forward([]*Frame{super, plain, tooLong})

	var out [4]*Frame
	n := b.TryDequeue(out[:])
	if n != 1 || len(out[0].B) != 60000 || out[0].Meta != superMeta {
		t.Fatalf("port b got %d frames (first %d bytes, %+v), want the super-frame with its metadata", n, len(out[0].B), out[0].Meta)
	}
	out[0].Release()
	if d := h.Stats().Drops; d.Oversize != 2 {
		t.Fatalf("oversize drops %d, want 2 (the plain 60000-byte frame and the super-frame over %d)", d.Oversize, gso.MaxSuperFrame)
	}
}

// A flooded super-frame is one buffer with one Meta shared by every egress
// queue, and Release clears the Meta before the frame goes back to its pool.
func TestFloodSharesMetaAndReleaseClearsIt(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{})
	in := h.Attach(PortSession, "in")
	outs := []*Port{h.Attach(PortSession, "x"), h.Attach(PortSession, "y")}
	f := ethFrame(bcast, macA, untag, 30000, 7)
	f.Meta = superMeta
	in.Forward([]*Frame{f})
	var got [2]*Frame
	for i, p := range outs {
		var one [1]*Frame
		if p.TryDequeue(one[:]) != 1 {
			t.Fatalf("port %s got nothing", p.Label())
		}
		got[i] = one[0]
	}
	if got[0] != got[1] || got[0].Meta != superMeta {
		t.Fatalf("flooding copied the frame or lost its metadata")
	}
	got[0].Release()
	if got[1].Meta != superMeta {
		t.Fatal("releasing one reference cleared the metadata under the other")
	}
	got[1].Release()
	if !f.Meta.IsZero() {
		t.Fatalf("a released frame kept its metadata %+v", f.Meta)
	}
}

// The egress queue is bounded by the buffer memory it pins: super-frames are
// tail-dropped once QueueBytes is reached, long before QueueLen.
func TestQueueBytesBoundSuperFrames(t *testing.T) {
	trackFrames(t)
	h := newTestHub(t, Options{QueueBytes: 4 * FrameCap})
	a, b := h.Attach(PortSession, "a"), h.Attach(PortSession, "b")
	send(b, macA, macB) // learn b
	batch := make([]*Frame, 10)
	for i := range batch {
		batch[i] = ethFrame(macB, macA, untag, 20000, byte(i)) // over MediumFrameCap: a 64 KiB buffer each
		batch[i].Meta = superMeta
	}
	a.Forward(batch)
	got := drain(b)
	if len(got) != 4 {
		t.Fatalf("queue took %d super-frames, want 4 (QueueBytes = 4 × FrameCap)", len(got))
	}
	for i, g := range got {
		if g.tag != byte(i) {
			t.Fatalf("frame %d is frame %d: not a tail drop", i, g.tag)
		}
	}
	if q := h.Stats().Drops.QueueFull; q != 6 {
		t.Fatalf("queue_full %d, want 6", q)
	}
	// Dequeued frames give their budget back.
	for i := range batch[:4] {
		batch[i] = ethFrame(macB, macA, untag, 20000, byte(i)) // over MediumFrameCap: a 64 KiB buffer each
		batch[i].Meta = superMeta
	}
	a.Forward(batch[:4])
	if n := len(drain(b)); n != 4 {
		t.Fatalf("after draining, the queue took %d frames, want 4", n)
	}
}
