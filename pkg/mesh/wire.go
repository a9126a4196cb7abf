package mesh

import (
	"encoding/binary"
	"fmt"

	"github.com/hubfleet/hubfleet/pkg/hub"
)

// Link messages. Every message is a 4-byte header, type (1 byte) and body
// length (uint24), as in pkg/protocol, and a body:
//
//	Hello     0x01  version u16, name length u8, member name
//	Attach    0x02  hub id u32, hub name (rest of the body)
//	Detach    0x03  hub id u32
//	Frames    0x10  hub id u32, count u8 (1..128), count × (length u16, bytes)
//	Keepalive 0x11  empty
//
// A hub id is chosen by the member that sends Attach, is never reused by it,
// and is what the other side puts in the Frames it sends to that member:
// Frames carry the receiver's id, so the reader demultiplexes
// with one map lookup and frames for a detached (stale) id are dropped.
const (
	msgHello     byte = 0x01
	msgAttach    byte = 0x02
	msgDetach    byte = 0x03
	msgFrames    byte = 0x10
	msgKeepalive byte = 0x11
)

const (
	headerLen = 4
	// linkVersion is the Hello version; a peer speaking another is refused.
	linkVersion = 1
	// maxBatch is the most frames in one Frames message.
	maxBatch = 128
	// maxBody bounds any message body: 128 frames of 64 KiB fit.
	maxBody = 9 << 20
	// maxControl bounds non-Frames bodies.
	maxControl = 4096
	// maxHubName bounds a hub name (namespace/name of a VirtualHub).
	maxHubName = 512
)

func putHeader(b []byte, typ byte, n int) {
	b[0] = typ
	b[1], b[2], b[3] = byte(n>>16), byte(n>>8), byte(n)
}

func parseHeader(b []byte) (typ byte, n int) {
	return b[0], int(b[1])<<16 | int(b[2])<<8 | int(b[3])
}

func appendHello(b []byte, name string) []byte {
	b = append(b, msgHello, 0, 0, 0)
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, linkVersion)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	putHeader(b[start-headerLen:], msgHello, len(b)-start)
	return b
}

func parseHello(body []byte) (string, error) {
	if len(body) < 3 {
		return "", fmt.Errorf("hello of %d bytes is too short", len(body))
	}
	if v := binary.BigEndian.Uint16(body); v != linkVersion {
		return "", fmt.Errorf("peer speaks mesh link version %d, this member %d", v, linkVersion)
	}
	n := int(body[2])
	if n == 0 || len(body) != 3+n {
		return "", fmt.Errorf("hello with a malformed member name")
	}
	return string(body[3:]), nil
}

func appendAttach(b []byte, id uint32, name string) []byte {
	b = append(b, msgAttach, 0, 0, 0)
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, name...)
	putHeader(b[start-headerLen:], msgAttach, len(b)-start)
	return b
}

func appendDetach(b []byte, id uint32) []byte {
	b = append(b, msgDetach, 0, 0, 4)
	return binary.BigEndian.AppendUint32(b, id)
}

// appendFrames encodes one Frames message of at most maxBatch frames.
func appendFrames(b []byte, id uint32, frames []*hub.Frame) []byte {
	start := len(b)
	b = append(b, msgFrames, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, byte(len(frames)))
	for _, f := range frames {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f.B)))
		b = append(b, f.B...)
	}
	putHeader(b[start:], msgFrames, len(b)-start-headerLen)
	return b
}
