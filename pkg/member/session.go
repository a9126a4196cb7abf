// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/ratelimit"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// batchFrames is the most frames a session moves per step: one wire batch.
const batchFrames = protocol.MaxBatchFrames

// session is one logged-in client or bridge: a protocol.Conn and a hub port, a
// reader goroutine (the one that accepted it) and a writer goroutine, plus the
// protocol's keepalive goroutine.
type session struct {
	srv    *Server
	hs     *hubState
	conn   *protocol.Conn
	port   *hub.Port
	kind   sessionkind.Kind
	user   string
	cred   auth.Credential // the stored password the login proved (endStaleUsers)
	label  string
	remote string
	since  time.Time // login; set before register
	id     [16]byte
	udp    *udpSession // set when the session negotiated CapUDP (udp.go)

	// Reader state. in is filled during one ReadFramesInto call (FrameBuffer,
	// FrameDone) and forwarded as one batch; its capacity is one wire batch,
	// so it never grows. next is the frame being read.
	in   []*hub.Frame
	next *hub.Frame

	// Rate limiting (userlimits.go), used only while the hub has a
	// sessionRate: each direction's bucket belongs to the goroutine that
	// moves it, with the limit it was built from (a new one resets it).
	inBucket, outBucket ratelimit.Bucket
	inLimit, outLimit   *ratelimit.Limit
	inSleep, outSleep   ratelimit.Sleeper

	shutOnce sync.Once
}

// run moves frames until the connection or the port ends, then releases the
// session's hub slot and license.
func (se *session) run() {
	start := time.Now()
	log := se.srv.log.With("hub", se.hs.name, "user", se.user, "remote", se.remote, "kind", se.kind.String())
	log.Info("session started", "gso", se.conn.Config().GSO)
	se.hs.sessionsChanged()
	ctx, cancel := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		se.writer(ctx)
	}()
	go func() { _ = se.conn.RunKeepalive(ctx) }()
	stopUDP := se.startUDP(ctx)

	err := se.reader()

	cancel()
	stopUDP()
	se.port.Close()
	se.conn.Close()
	<-writerDone
	se.hs.deregister(se)
	se.hs.sessionsChanged()
	se.srv.gate.Release(se.kind)
	st := se.conn.Stats()
	log.Info("session ended", "reason", endReason(err), "duration", time.Since(start).Round(time.Millisecond),
		"rx_frames", st.RxFrames, "tx_frames", st.TxFrames,
		// Whether offload pays: super-frames that crossed whole, and those
		// this member had to segment for a client without GSO.
		"rx_super", st.RxSuper, "tx_super", st.TxSuper, "tx_segmented", st.TxSegmented)
}

func endReason(err error) string {
	switch {
	case err == nil:
		return "closed"
	case errors.Is(err, protocol.ErrPeerClosed):
		return "client closed the session"
	case errors.Is(err, protocol.ErrShutdown):
		// Shutdown goes from a member to its clients only: a client that sends
		// it breaks the protocol, it is not the member shutting anything down.
		return "protocol violation by the client: it sent Shutdown, which only a member may send"
	case errors.Is(err, protocol.ErrPeerDead):
		return "client silent past the dead timeout: " + err.Error()
	}
	return err.Error()
}

// reader forwards each wire batch into the hub as one batch of pooled frames.
// Frames are taken from the pool only when bytes arrive, so an idle session pins
// no frame buffer. The Conn reads each frame straight into its hub frame
// (ReadFramesInto): a super-frame's bytes are copied once, out of TLS.
func (se *session) reader() error {
	se.in = make([]*hub.Frame, 0, batchFrames)
	for {
		_, err := se.conn.ReadFramesInto(se)
		if se.next != nil { // a frame whose read failed
			se.next.Release()
			se.next = nil
		}
		if len(se.in) > 0 {
			se.forward(se.in) // takes ownership of the frames
			clear(se.in)
			se.in = se.in[:0]
		}
		if err != nil {
			return err
		}
	}
}

// FrameBuffer (protocol.FrameSink) gives the Conn a pooled hub frame to read a
// frame into, with its offload metadata: a super-frame from an offload client
// crosses the hub whole, and each egress session decides whether it can take
// it (WriteFramesGSO segments it for one that cannot).
func (se *session) FrameBuffer(n int, m gso.Meta) []byte {
	f := hub.NewFrameSize(n)
	f.SetLen(n)
	f.Meta = m
	se.next = f
	return f.B
}

// FrameDone (protocol.FrameSink) keeps the frame just read.
func (se *session) FrameDone() {
	f := se.next
	se.in = append(se.in, f)
	se.next = nil
	if rl := se.hs.rate.Load(); rl != nil {
		se.paceIn(rl, len(f.B))
	}
}

// writeBatch is the writer's working set for one wire batch. It is pooled and held
// only while frames are in hand, so an idle session does not keep 4 KiB of it.
type writeBatch struct {
	frames [batchFrames]*hub.Frame
	bufs   [batchFrames][]byte
	metas  [batchFrames]gso.Meta
	rooms  [batchFrames][]byte
}

var writeBatches = sync.Pool{New: func() any { return new(writeBatch) }}

// writer sends what the hub queued for this session, one wire batch per write.
func (se *session) writer(ctx context.Context) {
	var first [1]*hub.Frame
	for {
		// Block for one frame without a batch in hand, then take what else is
		// queued without blocking.
		if _, err := se.port.Dequeue(ctx, first[:]); err != nil {
			return
		}
		wb := writeBatches.Get().(*writeBatch)
		wb.frames[0], first[0] = first[0], nil
		n := 1 + se.port.TryDequeue(wb.frames[1:])
		for i, f := range wb.frames[:n] {
			wb.bufs[i], wb.metas[i] = f.B, f.Meta
			// A frame only this writer holds (unicast) can go out from its
			// own buffer with its header in the headroom; a flooded one is
			// read by other ports' writers, so it is copied.
			if len(f.B) >= protocol.DirectWrite && f.Exclusive() {
				wb.rooms[i] = f.Room()
			}
		}
		var err error
		if rl := se.hs.rate.Load(); rl != nil {
			err = se.writePaced(ctx, rl, wb, n)
		} else {
			err = se.writeOut(wb.bufs[:n], wb.metas[:n], wb.rooms[:n])
		}
		for i, f := range wb.frames[:n] {
			f.Release()
			wb.frames[i], wb.bufs[i], wb.metas[i], wb.rooms[i] = nil, nil, gso.Meta{}, nil
		}
		writeBatches.Put(wb)
		if err != nil {
			return
		}
	}
}

// writeOut sends frames on the session's channel: TLS, or UDP while its
// path is up.
func (se *session) writeOut(bufs [][]byte, metas []gso.Meta, rooms [][]byte) error {
	if se.udp == nil {
		return se.conn.WriteFramesRoom(bufs, metas, rooms)
	}
	return se.write(bufs, metas)
}

// shutdown tells the client to log in again elsewhere, then ends the session.
func (se *session) shutdown(reason string) {
	se.shutOnce.Do(func() {
		_ = se.conn.WriteShutdown(reason)
		se.conn.Close()
	})
}
