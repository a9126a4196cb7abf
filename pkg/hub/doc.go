// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package hub implements the Virtual Hub: one learning Ethernet switch per
// hub instance. Hubs share nothing, so no frame ever passes between them.
//
// # Forwarding
//
// Port.Forward takes a batch of frames read from one session. For each frame
// it learns the source (VLAN, MAC) on the ingress port and then:
//
//   - unicast to a learned, unaged MAC goes to that MAC's port only;
//   - broadcast, multicast and unknown or aged unicast are flooded to every
//     other port;
//   - a frame is never sent back to its ingress port: unicast to a MAC behind
//     that port is filtered (counted in Filtered);
//   - split horizon: a frame from a PortPeer is never sent to another
//     PortPeer, flooded or not. Static hubs are one segment across members
//     over a full mesh, so the member that received a frame from a station
//     already sent it to every peer that needs it.
//
// The table is keyed by (VLAN, MAC): the 802.1Q VLAN ID when the frame is
// tagged (TPID 0x8100), else 0. The hub does not filter by VLAN — like any
// learning switch without VLAN membership, it floods a tagged frame to every
// port — but one MAC on two VLANs is two entries, so it can live behind two
// ports.
//
// A Frame may carry segmentation offload metadata (Frame.Meta): a super-frame
// of up to gso.MaxSuperFrame bytes from an offloading client, switched on its
// outer Ethernet header like any frame and segmented, if at all, by the egress
// port that cannot take it — into its own buffer, since a flooded frame is
// shared by every queue it sits in.
//
// Frames are dropped and counted when shorter than 14 bytes (18 with a tag:
// runt), longer than Options.MaxFrame (oversize; for a super-frame, longer
// than gso.MaxSuperFrame), with a multicast or zero
// source MAC (invalid_source, as the Linux bridge does: such a source cannot
// be learned and no NIC sends it), or when the destination's egress queue is
// full (queue_full, tail drop: the queued, older frames are kept). A queue is
// full at QueueLen frames or at QueueBytes of pinned buffer capacity, whichever
// comes first, so queued super-frames cannot pin QueueLen × 64 KiB.
//
// When the table holds MaxMACs entries, a new source MAC is not learned and
// its frame is counted as mac_table_full, but the frame is still forwarded:
// replies to it are flooded, which is slow but correct. Dropping instead
// would let one session that fills the table (a MAC flood) cut every new
// station off the hub. A full table first purges aged entries (at most once
// per second), so room returns without waiting for the periodic purge.
//
// # Ageing
//
// An entry not refreshed for MACAgeing is ignored at once and purged by
// ExpireMACs, which Forward also runs lazily every min(max(MACAgeing/4, 1s),
// 1m). A known MAC's last-seen time is rewritten at most once per
// min(1s, MACAgeing/8), so ageing is that much coarse and the entry's cache
// line is not written by every frame.
//
// # Concurrency and cost
//
// One goroutine per port calls Forward, one calls Dequeue. The forwarding
// path takes no hub-wide lock: the MAC table (table.go) is an open-addressing
// hash table read with atomic loads and written under Hub.mu only to learn a
// new MAC, move one, or purge; the flood list is a copy-on-write slice. Each
// egress queue is a bounded ring under its own mutex; a batch's frames for
// one port are queued under one lock acquisition. Frames come from sync.Pools
// and are reference-counted, so flooding to N ports shares one buffer and the
// forwarding path allocates nothing. Counters are per port (the ingress side
// published once per batch), summed by Stats, so cores do not contend on a
// hub-wide counter. docs/benchmarks-hub.md has the measurements.
package hub
