// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

import "testing"

// TestFrameRoom: a pooled frame has Headroom bytes before it, Room shows them
// with the frame as its tail (also for a frame resliced inside its buffer, as
// the bridge does), and nil once B has left the pooled buffer; Exclusive
// follows the references.
func TestFrameRoom(t *testing.T) {
	for _, f := range []*Frame{NewFrameSize(100), NewFrame()} {
		n := copy(f.Buf(), "0123456789")
		f.SetLen(n)
		r := f.Room()
		if len(r) != Headroom+n || string(r[Headroom:]) != "0123456789" || &r[Headroom] != &f.B[0] {
			t.Fatalf("Room = %d bytes, want the frame behind %d bytes of room", len(r), Headroom)
		}
		if !f.Exclusive() {
			t.Fatal("a new frame is not exclusive")
		}
		f.Retain()
		if f.Exclusive() {
			t.Fatal("a frame with two references is exclusive")
		}
		f.Release()
		f.B = f.Buf()[4 : 4+n]
		if r := f.Room(); len(r) != Headroom+4+n {
			t.Fatalf("Room of a resliced frame = %d bytes, want %d", len(r), Headroom+4+n)
		}
		f.B = append([]byte(nil), f.B...)
		if f.Room() != nil {
			t.Fatal("Room of a frame outside its buffer is not nil")
		}
		f.Release()
	}
	if f := NewFrameSize(SmallFrameCap - Headroom); len(f.Buf()) < SmallFrameCap-Headroom {
		t.Fatalf("NewFrameSize(%d) has %d bytes", SmallFrameCap-Headroom, len(f.Buf()))
	}
	// Each size takes the smallest class that holds it: a queued frame pins
	// its whole buffer.
	for _, c := range []struct{ n, cap int }{
		{SmallFrameCap - Headroom, SmallFrameCap}, {SmallFrameCap - Headroom + 1, MediumFrameCap},
		{9000, MediumFrameCap}, {MediumFrameCap - Headroom, MediumFrameCap}, {MediumFrameCap - Headroom + 1, FrameCap},
	} {
		f := NewFrameSize(c.n)
		if got := cap(f.buf); got != c.cap || len(f.Buf()) < c.n {
			t.Errorf("NewFrameSize(%d): a %d-byte buffer (%d after the headroom), want %d", c.n, got, len(f.Buf()), c.cap)
		}
		f.Release()
	}
}
