// Package tap is the Ethernet side of a VPN client or bridge: a TAP device the
// kernel hands frames to, behind a small interface (as wireguard-go's tun.Device)
// so a faster multi-queue or batched implementation can replace the water-based
// one without touching pkg/client.
//
// A Reader turns the one-frame-per-syscall Device into batches: it reads frames in
// its own goroutine into pooled buffers and lets the session writer drain whatever
// is ready (up to 128 frames), so a burst leaves as one Frames message and one TLS
// write. The other direction has no batch: water writes one frame per write(2).
// That costs one syscall per received frame (~1–2 µs each); a vectored
// implementation (IFF_VNET_HDR with GSO, or io_uring) would be the next step.
package tap

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/songgao/water"
)

// Device is an Ethernet device the kernel exchanges frames with. Read and Write
// move one whole frame each; Close makes a blocked Read return an error.
type Device interface {
	// Name is the kernel's interface name, such as "hf0".
	Name() string
	// MTU is the interface's current IP MTU (the Ethernet payload), or 0 if it
	// cannot be read.
	MTU() int
	// Read reads one frame into buf and returns its length. A frame longer than
	// buf is cut short by the kernel, so buf should hold MTU+FrameOverhead bytes.
	Read(buf []byte) (int, error)
	// Write sends one frame to the kernel.
	Write(frame []byte) (int, error)
	Close() error
}

// FrameOverhead is what an Ethernet frame adds to the MTU: a 14-byte header and
// two 802.1Q tags. The frame check sequence is not part of a TAP frame.
const FrameOverhead = 14 + 2*4

type waterDevice struct {
	*water.Interface
}

// Open creates a TAP device named name ("" lets the kernel pick tapN), not
// persistent: it disappears when the process closes it or exits. The link is left
// down; call SetUp (and SetMTU, AddAddress) to use it.
func Open(name string) (Device, error) {
	if len(name) > 15 {
		return nil, fmt.Errorf("TAP name %q is longer than the kernel's 15 characters: choose a shorter --tap name", name)
	}
	if strings.ContainsAny(name, "/ \t\n:%") {
		return nil, fmt.Errorf("TAP name %q contains characters an interface name cannot hold (/, :, %%, spaces)", name)
	}
	cfg := water.Config{DeviceType: water.TAP}
	cfg.Name = name
	ifce, err := water.New(cfg)
	if err != nil {
		return nil, explainOpen(name, err)
	}
	return waterDevice{ifce}, nil
}

func explainOpen(name string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("opening /dev/net/tun: %w: load the tun kernel module (modprobe tun) or, in a container, pass the device (--device /dev/net/tun)", err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("creating TAP device %q: %w: run as root or grant CAP_NET_ADMIN (setcap cap_net_admin+ep $(which hubfleet))", name, err)
	case strings.Contains(err.Error(), "device or resource busy"):
		return fmt.Errorf("creating TAP device %q: %w: an interface of that name exists and is in use; choose another --tap name", name, err)
	case strings.Contains(err.Error(), "invalid argument"):
		return fmt.Errorf("creating TAP device %q: %w: an interface of that name exists and is not a TAP device; choose another --tap name", name, err)
	}
	return fmt.Errorf("creating TAP device %q: %w", name, err)
}

func (d waterDevice) MTU() int {
	mtu, err := LinkMTU(d.Name())
	if err != nil {
		return 0
	}
	return mtu
}
