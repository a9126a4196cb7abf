// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package gso

// MaxSuperFrame is the longest super-frame the wire, the member mesh and the
// hub carry whole: an IP packet of 65535 bytes — for IPv6 the payload length,
// behind a 40-byte header, is the worst case — with an Ethernet header and
// two VLAN tags, rounded up. Offload devices hand out no longer packet
// (Linux caps GSO at 64 KiB unless BIG TCP is configured, which a TAP
// peer does not use).
const MaxSuperFrame = 65536 + 64
