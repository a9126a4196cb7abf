package mesh

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hubfleet/hubfleet/pkg/hub"
)

// read is the link's reader loop. Frames are copied out of the read buffer
// into pooled hub frames (the hub keeps them in queues past this call) and
// handed to the hub's peer port a batch at a time.
func (l *link) read() error {
	br := bufio.NewReaderSize(l.conn, 64<<10)
	dead := l.m.opt.DeadTimeout
	var armedAt time.Time
	batch := make([]*hub.Frame, 0, maxBatch)
	var hdr [headerLen + 5]byte
	for {
		// Re-arming the deadline only every eighth of the timeout keeps the
		// cost off the per-message path; a silent peer is caught within
		// 7/8..8/8 of the timeout.
		if now := time.Now(); now.Sub(armedAt) >= dead/8 {
			armedAt = now
			if err := l.conn.SetReadDeadline(now.Add(dead)); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(br, hdr[:headerLen]); err != nil {
			return l.readErr(err)
		}
		typ, n := parseHeader(hdr[:])
		if typ != msgFrames {
			if n > maxControl {
				return fmt.Errorf("peer %s sent message 0x%02x of %d bytes, over the %d-byte limit", l.peer, typ, n, maxControl)
			}
			body := make([]byte, n) // control plane: rare
			if _, err := io.ReadFull(br, body); err != nil {
				return l.readErr(err)
			}
			if err := l.control(typ, body); err != nil {
				return err
			}
			continue
		}
		if n < 5+2 || n > maxBody {
			return fmt.Errorf("peer %s sent a Frames message of %d bytes", l.peer, n)
		}
		if _, err := io.ReadFull(br, hdr[headerLen:]); err != nil {
			return l.readErr(err)
		}
		id := binary.BigEndian.Uint32(hdr[headerLen:])
		count := int(hdr[headerLen+4])
		if count == 0 || count > maxBatch {
			return fmt.Errorf("peer %s sent a batch of %d frames", l.peer, count)
		}
		pp := (*l.byID.Load())[id] // nil: a hub detached meanwhile; drop its frames
		left := n - 5
		for range count {
			if left < 2 {
				releaseAll(batch)
				return fmt.Errorf("peer %s sent a batch that ends inside a frame header", l.peer)
			}
			if _, err := io.ReadFull(br, hdr[:2]); err != nil {
				releaseAll(batch)
				return l.readErr(err)
			}
			size := int(binary.BigEndian.Uint16(hdr[:2]))
			left -= 2 + size
			if left < 0 {
				releaseAll(batch)
				return fmt.Errorf("peer %s sent a frame that overruns its batch", l.peer)
			}
			if pp == nil {
				if _, err := br.Discard(size); err != nil {
					return l.readErr(err)
				}
				continue
			}
			f := hub.NewFrameSize(size)
			if _, err := io.ReadFull(br, f.Buf()[:size]); err != nil {
				f.Release()
				releaseAll(batch)
				return l.readErr(err)
			}
			f.SetLen(size)
			batch = append(batch, f)
		}
		if left != 0 {
			releaseAll(batch)
			return fmt.Errorf("peer %s sent %d bytes after the last frame of a batch", l.peer, left)
		}
		if pp != nil {
			pp.port.Forward(batch) // takes the references
			clear(batch)
			batch = batch[:0]
		}
	}
}

func (l *link) control(typ byte, body []byte) error {
	switch typ {
	case msgKeepalive:
	case msgAttach:
		if len(body) < 5 || len(body) > 4+maxHubName {
			return fmt.Errorf("peer %s sent a malformed Attach", l.peer)
		}
		l.remoteAttach(binary.BigEndian.Uint32(body), string(body[4:]))
	case msgDetach:
		if len(body) != 4 {
			return fmt.Errorf("peer %s sent a malformed Detach", l.peer)
		}
		l.remoteDetach(binary.BigEndian.Uint32(body))
	default:
		return fmt.Errorf("peer %s sent unknown message type 0x%02x", l.peer, typ)
	}
	return nil
}

func (l *link) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("peer %s dead: nothing received for %v", l.peer, l.m.opt.DeadTimeout)
	}
	return err
}

func releaseAll(frames []*hub.Frame) {
	for _, f := range frames {
		f.Release()
	}
}
