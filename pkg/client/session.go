// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/tap"
)

// session pumps frames between the TAP and conn until either fails or ctx ends.
// It runs one goroutine pair, as wireguard-go does per peer: this goroutine reads
// the connection and writes each frame to the TAP, the other drains the TAP
// Reader's queue in batches into WriteFrames (one TLS write per batch); the
// protocol's keepalive runs beside them. The Conn is closed when it returns.
func (c *client) session(ctx context.Context, conn *protocol.Conn) error {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go conn.RunKeepalive(kctx)
	// Cancellation (a signal) ends the session with a Close, so the member frees
	// it at once instead of waiting for the dead-peer timeout.
	stopWatch := context.AfterFunc(ctx, func() { conn.CloseWithReason("client stopped") })
	defer stopWatch()

	werr := make(chan error, 1)
	go func() { werr <- c.writeLoop(conn) }()
	var err error
	for err == nil {
		_, err = conn.ReadFramesGSO(c.toTAP)
	}
	conn.Close()
	// A TAP failure seen by the writer is the real cause; the reader then only
	// saw its own connection closed.
	if tapErr := <-werr; tapErr != nil {
		return tapErr
	}
	return err
}

// writeLoop sends what the TAP produced until the session or the TAP ends. It
// returns a non-nil error only for a TAP failure, which ends the client.
func (c *client) writeLoop(conn *protocol.Conn) error {
	var b tap.Batch
	defer b.Release()
	for {
		err := c.reader.ReadBatch(conn.Done(), &b)
		if errors.Is(err, tap.ErrStopped) {
			return nil
		}
		if err != nil {
			conn.Close()
			return &Error{Reason: ReasonTAP, Err: fmt.Errorf("TAP device %s failed: %w", c.dev.Name(), err)}
		}
		if err := conn.WriteFramesGSO(b.Frames, b.Meta); err != nil {
			return nil // the reader sees the same failure and reports it
		}
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
