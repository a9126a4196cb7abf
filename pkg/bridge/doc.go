// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package bridge is the LAN side of a member's local bridge: it joins one
// static hub instance to a host (or secondary pod) network interface, so the
// hub's Layer-2 segment and the LAN become one.
//
// The LAN port is a Device: an ethdev.Device (a batch of Ethernet frames in,
// a batch out, each with a virtio_net_hdr, as wireguard-go's tun.Device), the
// interface a client's TAP implements too; Attach connects a Device to a hub
// as a PortBridge port with one goroutine per direction. The Linux Device is an
// AF_PACKET raw socket bound to the interface in promiscuous mode, rather
// than a TAP device in a Linux bridge with the interface: it needs only
// CAP_NET_RAW (no /dev/net/tun, no CAP_NET_ADMIN), creates no device and
// changes no link (the interface keeps its addresses), and everything it sets
// up — the socket and its promiscuous membership — ends with the socket when
// the bridge is closed or the process dies. docs/bridge.md compares the two.
//
// Because the kernel hands a packet socket frames before segmentation and
// checksumming (GRO on receive, TSO and checksum offload from local senders),
// the socket asks for a virtio-net header per frame (PACKET_VNET_HDR) and the
// Device finishes what the kernel left: it fills in partial checksums and
// splits TCP segmentation-offload frames into MTU-sized ones (pkg/gso). The
// other way, a super-frame the hub hands over (from a client with offloads)
// is split before it reaches the LAN, its segments sent in one sendmmsg.
//
// Hot path: recvmmsg and sendmmsg move up to BatchSize frames per system
// call into pooled hub frames; nothing is allocated per frame.
package bridge
