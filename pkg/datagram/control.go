// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import "encoding/binary"

// Control datagrams are sealed like data, so a keepalive or a probe answer
// proves the path carries this session's datagrams both ways, and a client's
// new address is learnt only from a datagram that authenticates.

// SealKeepalive builds a Keepalive datagram in b (capacity Overhead or more).
func (s *Sealer) SealKeepalive(b []byte) ([]byte, error) {
	return s.Seal(TypeKeepalive, b[:HeaderLen])
}

// SealProbe builds a Probe datagram of exactly size bytes in b (capacity
// size or more). The padding is zeros: probing a size means sending it.
func (s *Sealer) SealProbe(b []byte, id uint32, size int) ([]byte, error) {
	size = min(max(size, Overhead+4), MaxDatagram)
	b = b[:size-TagLen]
	binary.BigEndian.PutUint32(b[HeaderLen:], id)
	clear(b[HeaderLen+4:])
	return s.Seal(TypeProbe, b)
}

// SealProbeAck answers a probe of size bytes with id.
func (s *Sealer) SealProbeAck(b []byte, id uint32, size int) ([]byte, error) {
	b = b[:HeaderLen+6]
	binary.BigEndian.PutUint32(b[HeaderLen:], id)
	binary.BigEndian.PutUint16(b[HeaderLen+4:], uint16(size))
	return s.Seal(TypeProbeAck, b)
}

// ParseProbe reads a Probe's ID from its payload.
func ParseProbe(payload []byte) (id uint32, ok bool) {
	if len(payload) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(payload), true
}

// ParseProbeAck reads a ProbeAck's probe ID and size.
func ParseProbeAck(payload []byte) (id uint32, size int, ok bool) {
	if len(payload) < 6 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(payload), int(binary.BigEndian.Uint16(payload[4:])), true
}
