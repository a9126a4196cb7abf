// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"encoding/binary"
	"fmt"

	"github.com/hubfleet/hubfleet/pkg/framing"
)

// Link messages. Every message is a 4-byte header, type (1 byte) and body
// length (uint24), as in pkg/protocol, and a body:
//
//	Hello     0x01  version u16, name length u8, member name
//	Attach    0x02  hub id u32, hub name (rest of the body)
//	Detach    0x03  hub id u32
//	Frames    0x10  hub id u32, count u8 (1..128), count × (length u16, bytes)
//	Keepalive 0x11  empty
//	FramesGSO 0x14  hub id u32, then a framing.Meta batch: count u8, count ×
//	                (length u24, flags, offload fields, bytes)  (version 2)
//	UDPIn     0x20  client address [16], port u16, (length u16, datagram)…  (version 3, udp.go)
//	UDPOut    0x21  the same, toward the client                            (version 3)
//
// The batches are pkg/framing's, as on client sessions. Version 2 links send
// FramesGSO, so super-frames cross whole with their metadata; a version 1
// link (a peer not yet upgraded) gets Frames, with super-frames segmented by
// the sender.
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
	msgFramesGSO byte = 0x14
)

const (
	headerLen = framing.HeaderLen
	// linkVersion is the highest link version this member speaks and the one
	// its Hello offers; the acceptor answers with min(offered, its own), and
	// both use that. minLinkVersion is the oldest accepted. Version 1 members
	// refuse any Hello but 1, so a dialler whose version 2 Hello is refused
	// without an answer retries once with 1 (see dialLink). Version 3 adds
	// datagram forwarding (udp.go); a version 2 acceptor answers 2.
	linkVersion    = 3
	minLinkVersion = 1
	// maxBatch is the most frames in one Frames message.
	maxBatch = framing.MaxBatchFrames
	// maxBody bounds a Frames body: 128 frames of 64 KiB fit.
	maxBody = 9 << 20
	// maxGSOBody bounds a FramesGSO body (hub id and batch).
	maxGSOBody = 4 + framing.MaxMetaBatchBody
	// pumpBatchBody is where a pump ends a batch, so its pooled encode buffer
	// stays a few hundred KiB however large the frames.
	pumpBatchBody = 256 << 10
	// maxControl bounds non-Frames bodies.
	maxControl = 4096
	// maxHubName bounds a hub name (namespace/name of a VirtualHub).
	maxHubName = 512
)

func putHeader(b []byte, typ byte, n int) { framing.PutHeader(b, typ, n) }

func parseHeader(b []byte) (typ byte, n int) { return framing.ParseHeader(b) }

func appendHello(b []byte, name string) []byte { return appendHelloVersion(b, name, linkVersion) }

func appendHelloVersion(b []byte, name string, version uint16) []byte {
	b = append(b, msgHello, 0, 0, 0)
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, version)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	putHeader(b[start-headerLen:], msgHello, len(b)-start)
	return b
}

// parseHello returns the peer's name and the version its Hello states: any
// version from minLinkVersion on (a later one is answered with ours).
func parseHello(body []byte) (string, uint16, error) {
	if len(body) < 3 {
		return "", 0, fmt.Errorf("hello of %d bytes is too short", len(body))
	}
	v := binary.BigEndian.Uint16(body)
	if v < minLinkVersion {
		return "", 0, fmt.Errorf("peer speaks mesh link version %d, this member %d..%d", v, minLinkVersion, linkVersion)
	}
	n := int(body[2])
	if n == 0 || len(body) != 3+n {
		return "", 0, fmt.Errorf("hello with a malformed member name")
	}
	return string(body[3:]), v, nil
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
