// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

func frameOf(size int, seed byte) []byte {
	f := make([]byte, size)
	for i := range f {
		f[i] = seed + byte(i)
	}
	return f
}

// collect reads from ch until n frames arrived.
func collect(t *testing.T, ch <-chan readResult, n int) [][]byte {
	t.Helper()
	var got [][]byte
	for len(got) < n {
		r := next(t, ch, 10*time.Second)
		if r.err != nil {
			t.Fatalf("after %d of %d frames: %v", len(got), n, r.err)
		}
		got = append(got, r.frames...)
	}
	return got
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		<-tick.C
	}
}

func TestFramesArriveInOrderBothWays(t *testing.T) {
	client, member := sessionPair(t, LoginResult{Code: OK})
	var frames [][]byte
	for i := range 300 { // more than two batches' worth
		frames = append(frames, frameOf(i*37%DefaultMaxFrame+1, byte(i)))
	}
	frames = append(frames, []byte{}, frameOf(DefaultMaxFrame, 7))
	fromClient := reader(member)
	if err := client.WriteFrames(frames); err != nil {
		t.Fatal(err)
	}
	got := collect(t, fromClient, len(frames))
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got[i]), len(frames[i]))
		}
	}
	if s := client.Stats(); s.TxFrames != uint64(len(frames)) || s.TxOversize != 0 {
		t.Fatalf("client stats %+v", s)
	}

	// The other way, with ReadBatch into caller-owned buffers.
	if err := member.WriteFrames(frames[:200]); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := make([][]byte, 50), make([]int, 50)
	for i := range bufs {
		bufs[i] = make([]byte, client.Config().MaxFrame)
	}
	for i := 0; i < 200; {
		n, err := client.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		for j := range n {
			if !bytes.Equal(bufs[j][:sizes[j]], frames[i+j]) {
				t.Fatalf("frame %d differs", i+j)
			}
		}
		i += n
	}
	if s := client.Stats(); s.RxFrames != 200 {
		t.Fatalf("client received %d frames, want 200", s.RxFrames)
	}
	if _, err := client.ReadBatch([][]byte{make([]byte, 100)}, []int{0}); err == nil || !strings.Contains(err.Error(), "max frame") {
		t.Fatalf("ReadBatch with a short buffer: err = %v", err)
	}
}

func TestJumboFramesSplitIntoBatchesUnderTheBodyLimit(t *testing.T) {
	client, member := sessionPair(t, LoginResult{Code: OK, MaxFrame: MaxFrameLimit})
	var frames [][]byte
	for i := range 40 { // 40 × 64 KiB = 2.5 MiB: at least three batches
		frames = append(frames, frameOf(MaxFrameLimit-i, byte(i)))
	}
	ch := reader(member)
	if err := client.WriteFrames(frames); err != nil {
		t.Fatal(err)
	}
	got := collect(t, ch, len(frames))
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

func TestKeepaliveHoldsAnIdleSessionPastTheDeadTimeout(t *testing.T) {
	// A dead timeout six keepalives long: a loaded machine that delays a
	// keepalive goroutine by 100 ms (seen with 50/150 ms) must not end the session.
	client, member := sessionPair(t, LoginResult{Code: OK, KeepaliveInterval: 100 * time.Millisecond, DeadPeerTimeout: 600 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go client.RunKeepalive(ctx)
	go member.RunKeepalive(ctx)
	fromClient, fromMember := reader(member), reader(client)
	// Twenty keepalives each way is 2 s of idleness, over three dead timeouts.
	waitFor(t, 20*time.Second, "twenty keepalives each way", func() bool {
		return member.Stats().RxKeepalives >= 20 && client.Stats().RxKeepalives >= 20
	})
	if err := client.WriteFrames([][]byte{[]byte("still here")}); err != nil {
		t.Fatal(err)
	}
	if r := next(t, fromClient, 5*time.Second); r.err != nil || string(r.frames[0]) != "still here" {
		t.Fatalf("after idling: %q, %v", r.frames, r.err)
	}
	select {
	case r := <-fromMember:
		t.Fatalf("client's reader ended during an idle but live session: %v", r.err)
	default:
	}
}

func TestSilentPeerIsDetectedWithinTheDeadTimeout(t *testing.T) {
	const dead = 150 * time.Millisecond
	client, member := sessionPair(t, LoginResult{Code: OK, KeepaliveInterval: 50 * time.Millisecond, DeadPeerTimeout: dead})
	// The client sends no keepalives: to the member it is a dead peer.
	start := time.Now()
	r := next(t, reader(member), 10*time.Second)
	elapsed := time.Since(start)
	if !errors.Is(r.err, ErrPeerDead) {
		t.Fatalf("err = %v, want ErrPeerDead", r.err)
	}
	// The detection is armed to fire between 7/8 and 8/8 of the timeout; a second
	// of slack absorbs scheduling on a loaded machine.
	if elapsed < dead*7/8 || elapsed > dead+time.Second {
		t.Fatalf("declared dead after %v, want about the %v timeout", elapsed, dead)
	}
	// The member closed the session, so the client learns of it too.
	if r := next(t, reader(client), 10*time.Second); r.err == nil {
		t.Fatal("client read frames from a session the member closed")
	}
}

func TestOversizeFramesAreDroppedAndCounted(t *testing.T) {
	client, member := sessionPair(t, LoginResult{Code: OK})
	ch := reader(member)
	// A sender that believes in a larger MTU than the member's.
	loose := NewConn(client.NetConn(), Config{MaxFrame: 9000})
	if err := loose.WriteFrames([][]byte{frameOf(100, 1), frameOf(3000, 2), frameOf(200, 3)}); err != nil {
		t.Fatal(err)
	}
	got := collect(t, ch, 2)
	if len(got) != 2 || len(got[0]) != 100 || len(got[1]) != 200 {
		t.Fatalf("received frames of %d and %d bytes, want 100 and 200", len(got[0]), len(got[1]))
	}
	if n := member.Stats().RxOversize; n != 1 {
		t.Fatalf("RxOversize = %d, want 1", n)
	}
	// The sender drops what it knows is too long, and the session goes on.
	if err := client.WriteFrames([][]byte{frameOf(DefaultMaxFrame+1, 4), frameOf(300, 5)}); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ch, 1); len(got[0]) != 300 {
		t.Fatalf("next frame has %d bytes, want 300", len(got[0]))
	}
	if n := client.Stats().TxOversize; n != 1 {
		t.Fatalf("TxOversize = %d, want 1", n)
	}
}

func rawMessage(typ byte, body []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(body))
	putHeader(b, typ, len(body))
	return append(b, body...)
}

func TestHardLimitViolationsEndTheSession(t *testing.T) {
	frame := func(n int) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(n)), make([]byte, n)...) }
	batch := func(count byte, frames ...[]byte) []byte {
		return rawMessage(msgFrames, append([]byte{count}, bytes.Join(frames, nil)...))
	}
	huge := make([]byte, headerLen)
	putHeader(huge, msgFrames, MaxBatchBody+1)
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"200 frames":             {batch(200, bytes.Repeat(frame(1), 200)), "batch of 200 frames"},
		"zero frames":            {batch(0), "cannot hold a frame"},
		"body over 1 MiB":        {huge, "over the 1048576-byte limit"},
		"frame overruns batch":   {batch(1, frame(10)[:8]), "overruns its batch"},
		"bytes after last":       {batch(1, frame(10), []byte{0, 0, 0}), "after its last declared frame"},
		"fewer frames than said": {batch(3, frame(10), frame(10)), "inside a frame header"},
		"unknown type":           {rawMessage(0x42, nil), "unexpected message type 0x42"},
		"login mid-session":      {encodeLoginRequest(&okLogin), "unexpected message type 0x01"},
		"huge keepalive":         {rawMessage(msgKeepalive, make([]byte, 5000)), "over the 4096-byte limit"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			client, member := sessionPair(t, LoginResult{Code: OK})
			fromClient, fromMember := reader(member), reader(client)
			// The write may fail part way: the member can judge and close the session
			// on the first TLS record of a long message.
			_, _ = client.NetConn().Write(c.raw)
			r := next(t, fromClient, 10*time.Second)
			if !errors.Is(r.err, ErrProtocol) || !strings.Contains(r.err.Error(), c.want) {
				t.Fatalf("member: err = %v, want a protocol error mentioning %q", r.err, c.want)
			}
			// The offender is told why before the connection closes.
			r = next(t, fromMember, 10*time.Second)
			if !errors.Is(r.err, ErrPeerClosed) || !strings.Contains(r.err.Error(), c.want) {
				t.Fatalf("client: err = %v, want ErrPeerClosed carrying the reason", r.err)
			}
		})
	}
}

func TestExtensionMessagesAreSkipped(t *testing.T) {
	client, member := sessionPair(t, LoginResult{Code: OK})
	ch := reader(member)
	if _, err := client.NetConn().Write(rawMessage(msgExtension|0x05, []byte("from the future"))); err != nil {
		t.Fatal(err)
	}
	if err := client.WriteFrames([][]byte{[]byte("after")}); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ch, 1); string(got[0]) != "after" {
		t.Fatalf("got %q", got[0])
	}
}

func TestShutdownReachesTheClientReader(t *testing.T) {
	client, member := sessionPair(t, LoginResult{Code: OK})
	ch := reader(client)
	if err := member.WriteFrames([][]byte{[]byte("last frame")}); err != nil {
		t.Fatal(err)
	}
	if err := member.WriteShutdown("member-0 is draining"); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ch, 1); string(got[0]) != "last frame" {
		t.Fatalf("frame before the shutdown: %q", got[0])
	}
	r := next(t, ch, 10*time.Second)
	se, ok := errors.AsType[*ShutdownError](r.err)
	if !ok || se.Reason != "member-0 is draining" || !errors.Is(r.err, ErrShutdown) {
		t.Fatalf("err = %v, want a *ShutdownError with the reason", r.err)
	}
	select {
	case <-client.Done():
	default:
		t.Fatal("client Conn still open after the read error")
	}
}

func TestCloseCarriesItsReason(t *testing.T) {
	client, member := sessionPair(t, LoginResult{Code: OK})
	ch := reader(client)
	member.CloseWithReason("hub default/vpn was deleted")
	r := next(t, ch, 10*time.Second)
	if !errors.Is(r.err, ErrPeerClosed) || !strings.Contains(r.err.Error(), "hub default/vpn was deleted") {
		t.Fatalf("err = %v", r.err)
	}
	if err := member.WriteFrames([][]byte{{1}}); err == nil {
		t.Fatal("WriteFrames succeeded on a closed Conn")
	}
}
