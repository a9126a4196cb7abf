// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package bridge

import (
	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// Device is a LAN interface the bridge exchanges Ethernet frames with: an
// ethdev.Device, the interface a client's TAP also implements, with counters.
//
// The Linux Device hands out only ordinary frames (its Offload() is zero):
// it completes checksums and splits the super-frames the kernel gives a
// packet socket, because a LAN takes nothing else, and it splits the
// super-frames the hub hands it before they reach the LAN.
type Device interface {
	ethdev.Device
	// Stats are the device's counters.
	Stats() DeviceStats
}

// MetaWriter is implemented by a Device that takes each frame's offload
// metadata beside it rather than as a virtio_net_hdr in front, so the
// bridge passes the hub's frames without copying them behind a header.
type MetaWriter interface {
	// WriteMeta sends frames[i] with metadata metas[i], as Write would.
	WriteMeta(frames [][]byte, metas []gso.Meta) (int, error)
}

// DeviceStats counts what a Device did.
type DeviceStats struct {
	RxFrames, TxFrames uint64
	// Segmented counts offload frames split into several; Dropped counts
	// frames that could not be passed on (too long, unsupported offload).
	Segmented, Dropped uint64
	// VLANRestored counts received frames whose 802.1Q tag, stripped by the
	// NIC, was put back.
	VLANRestored uint64
}

// ErrClosed is returned by Read and Write after Close.
var ErrClosed = ethdev.ErrClosed
