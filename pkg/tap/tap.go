// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package tap is the Ethernet side of a VPN client or bridge session: a TAP
// device the kernel hands frames to, as an ethdev.Device (a batch of frames
// per call, each with a virtio_net_hdr in front).
//
// On Linux, Open talks to /dev/net/tun itself (tap_linux.go): IFF_VNET_HDR
// and TUNSETOFFLOAD let the kernel hand over TCP (and, on Linux 6.2 or later,
// UDP) super-frames of up to 64 KiB with their segmentation metadata, and take
// them back whole, so a bulk transfer costs one read(2) or write(2) per 64 KiB
// instead of one per 1.5 KiB; IFF_MULTI_QUEUE gives one file descriptor per
// reader, so readers on several cores never contend. The fds are non-blocking
// and registered with Go's poller, so a blocked Read costs no thread and Close
// ends it.
//
// github.com/songgao/water stays as the portable device (water.go), the
// design card's TAP package: it is what Open uses off Linux and on a Linux
// kernel that refuses IFF_VNET_HDR or IFF_MULTI_QUEUE. It no longer serves
// the Linux hot path: it moves one MTU-sized frame per system call, with no
// offloads and one queue, which caps a client at about 0.6 Gbit/s.
//
// A Reader connects a Device to a session: one goroutine per device queue
// reads a batch and writes it to the session itself, so a burst leaves as one
// Frames message and one TLS write with no hand-off between goroutines.
package tap

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
)

// Device is a TAP device: an ethdev.Device.
type Device = ethdev.Device

// FrameOverhead is what an Ethernet frame adds to the MTU: a 14-byte header and
// two 802.1Q tags. The frame check sequence is not part of a TAP frame.
const FrameOverhead = ethdev.FrameOverhead

// Options choose how Open sets a TAP device up.
type Options struct {
	// Queues is the number of queues (file descriptors) to open: one per
	// reader goroutine. 0 means 1. The Reader runs one goroutine per queue;
	// DefaultQueues is a good value for a client.
	Queues int
	// Offload asks the kernel for super-frames with segmentation and
	// checksum metadata (IFF_VNET_HDR, TUNSETOFFLOAD). A consumer that
	// cannot carry the metadata to the far end must leave it off: the
	// device's Offload() then reports none and Read returns only ordinary
	// frames. Write takes super-frames either way (splitting them itself
	// when the device has no offload).
	Offload bool
}

// DefaultQueues is one queue per core a client uses, at most two: a client
// has one session, so more readers would only contend on its queue.
func DefaultQueues() int { return min(runtime.GOMAXPROCS(0), 2) }

func checkName(name string) error {
	if len(name) > 15 {
		return fmt.Errorf("TAP name %q is longer than the kernel's 15 characters: choose a shorter --tap name", name)
	}
	if strings.ContainsAny(name, "/ \t\n:%") {
		return fmt.Errorf("TAP name %q contains characters an interface name cannot hold (/, :, %%, spaces)", name)
	}
	return nil
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

// Stats count what a device did beyond moving frames.
type Stats struct {
	// RxSuper counts super-frames read (frames with a GSO type).
	RxSuper uint64
	// TxSplit counts frames Write completed or split because the device
	// could not take them whole.
	TxSplit uint64
	// Dropped counts frames lost: too long for the reader's buffer, refused
	// by the kernel, or impossible to split.
	Dropped uint64
}

// StatsOf returns a device's Stats, or zero Stats for a device that keeps
// none.
func StatsOf(d Device) Stats {
	if s, ok := d.(interface{ Stats() Stats }); ok {
		return s.Stats()
	}
	return Stats{}
}

// Queues returns the per-queue devices of a multi-queue TAP (one reader
// each), or d itself.
func Queues(d Device) []Device {
	if q, ok := d.(interface{ Queues() []Device }); ok {
		return q.Queues()
	}
	return []Device{d}
}
