// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"context"
	"fmt"

	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/tap"
)

// session pumps frames between the TAP and conn until either fails or ctx ends.
// Each direction runs on one goroutine with no queue between its read and its
// write: this goroutine reads the connection and writes each frame to the
// TAP; the TAP Reader's goroutines (one per device queue) write what they
// read straight into conn (one TLS write per batch), as wireguard-go's peer
// routines do without its channels. A hand-off between goroutines costs a
// thread park and wake per batch, which on a client sharing two cores was
// the largest item of its profile. The protocol's keepalive runs beside them.
// The Conn is closed when it returns.
func (c *client) session(ctx context.Context, conn *protocol.Conn) error {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go conn.RunKeepalive(kctx)
	// Cancellation (a signal) ends the session with a Close, so the member frees
	// it at once instead of waiting for the dead-peer timeout.
	stopWatch := context.AfterFunc(ctx, func() { conn.CloseWithReason("client stopped") })
	defer stopWatch()

	c.reader.Attach(c.sink(conn))
	defer c.reader.Detach()
	// A TAP that fails ends its Reader; the session must end with it.
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-c.reader.Done():
			conn.Close()
		case <-conn.Done():
		}
	}()
	// Frames are read from TLS straight into the TAP write buffer, behind
	// their virtio_net_hdr (tapSink).
	ts := &tapSink{c: c}
	var err error
	for err == nil {
		_, err = conn.ReadFramesInto(ts)
	}
	conn.Close()
	<-watchDone
	// A TAP failure is the real cause; the reader then only saw its own
	// connection closed.
	if tapErr := c.reader.Err(); tapErr != nil {
		return &Error{Reason: ReasonTAP, Err: fmt.Errorf("TAP device %s failed: %w", c.dev.Name(), tapErr)}
	}
	return err
}

// tapSink is a session's protocol.FrameSink: each frame is read into the
// client's TAP write buffer behind its virtio_net_hdr and written to the TAP
// from there, so a super-frame's bytes are copied once on this side (out of
// TLS) instead of twice (into the session's read buffer, then behind the
// header). Frames go to the TAP in the order they arrive, one write each, as
// writeTAP does.
type tapSink struct {
	c *client
	n int
}

func (s *tapSink) FrameBuffer(n int, m gso.Meta) []byte {
	c := s.c
	if n > len(c.tapBuf)-tap.Headroom {
		c.tapWriteErr++
		return nil
	}
	m.PutVirtio(c.tapBuf[:tap.Headroom])
	s.n = n
	return c.tapBuf[tap.Headroom:]
}

func (s *tapSink) FrameDone() {
	c := s.c
	c.tapBufs[0] = c.tapBuf[:tap.Headroom+s.n]
	if _, err := c.dev.Write(c.tapBufs, tap.Headroom); err != nil {
		c.tapWriteErr++
	}
}

// writeTAP hands one received frame to the kernel, one write(2): a
// super-frame from an offload peer goes whole, so one write stands for up to
// 44 MTU-sized frames. The device takes a virtio_net_hdr right before each
// frame, and the frame sits in the session's read buffer behind wire
// headers, so it is copied behind its header (a 64 KiB copy is a few µs, far
// less than the segmentation it saves). A frame the device cannot take whole
// is split by the device; one it refuses is dropped (and counted by the
// device); a TAP that is gone also fails its reads, which ends the client
// through writeLoop.
func (c *client) writeTAP(frame []byte, m gso.Meta) {
	if len(frame) > len(c.tapBuf)-tap.Headroom {
		c.tapWriteErr++
		return
	}
	m.PutVirtio(c.tapBuf[:tap.Headroom])
	c.tapBufs[0] = c.tapBuf[:tap.Headroom+copy(c.tapBuf[tap.Headroom:], frame)]
	if _, err := c.dev.Write(c.tapBufs, tap.Headroom); err != nil {
		c.tapWriteErr++
	}
}
