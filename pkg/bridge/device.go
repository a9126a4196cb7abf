package bridge

import "errors"

// Device is a LAN interface the bridge exchanges Ethernet frames with.
type Device interface {
	// Name is the interface's name.
	Name() string
	// BatchSize is the most frames one Read or Write moves.
	BatchSize() int
	// Read blocks until at least one frame arrived, then reads up to
	// len(bufs) frames: frame i into bufs[i][:sizes[i]]. A frame longer than
	// its buffer is dropped (and counted), never cut short.
	Read(bufs [][]byte, sizes []int) (int, error)
	// Write sends frames to the LAN and returns how many it sent; a frame
	// the interface refuses (longer than its MTU) is dropped and counted.
	Write(frames [][]byte) (int, error)
	// Stats are the device's counters.
	Stats() DeviceStats
	// Close ends the device; a blocked Read returns ErrClosed.
	Close() error
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
var ErrClosed = errors.New("bridge: device closed")
