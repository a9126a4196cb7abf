// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package tap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/ethdev"
)

func inPrivateNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and a TAP device: run as root (go test as root, or sudo)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun (modprobe tun, or --device /dev/net/tun in a container)")
	}
	testutil.InPrivateNetns(t, fn)
}

func TestTAPCarriesFramesBothWaysWithMTUAndAddress(t *testing.T) {
	for _, o := range []Options{{}, {Queues: 2, Offload: true}} {
		t.Run(fmt.Sprintf("queues=%d,offload=%v", o.Queues, o.Offload), func(t *testing.T) { testCarriesFrames(t, o) })
	}
}

func testCarriesFrames(t *testing.T, o Options) {
	inPrivateNetns(t, func() {
		dev, err := Open("hftest0", o)
		if err != nil {
			t.Error(err)
			return
		}
		defer dev.Close()
		if want := o.Offload; dev.Offload().TSO4 != want || dev.Offload().VnetHdr != want {
			t.Errorf("Offload() = %+v with Options.Offload %v", dev.Offload(), o.Offload)
		}
		if n := len(Queues(dev)); n != max(o.Queues, 1) {
			t.Errorf("%d queues, want %d", n, max(o.Queues, 1))
		}
		if dev.Name() != "hftest0" {
			t.Errorf("Name() = %q, want hftest0", dev.Name())
		}
		if err := SetMTU(dev.Name(), 1400); err != nil {
			t.Error(err)
			return
		}
		if got := dev.MTU(); got != 1400 {
			t.Errorf("MTU() = %d after SetMTU(1400)", got)
		}
		for _, step := range []error{SetUp(dev.Name()), AddAddress(dev.Name(), "10.199.0.1/24"), AddAddress(dev.Name(), "10.199.0.1/24")} {
			if step != nil {
				t.Error(step)
				return
			}
		}
		peerMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
		// A datagram to a neighbour inside this namespace's subnet makes the kernel
		// ARP for it on the TAP: the frame must come out of Read.
		udp, err := net.Dial("udp4", "10.199.0.2:9")
		if err != nil {
			t.Error(err)
			return
		}
		defer udp.Close()
		if _, err := udp.Write([]byte("hello")); err != nil {
			t.Error(err)
			return
		}
		arp := readUntil(t, dev, func(f []byte) bool {
			return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && bytes.Equal(f[38:42], []byte{10, 199, 0, 2})
		})
		if arp == nil {
			return
		}
		// Answer the ARP through Write; the kernel then sends the queued datagram
		// to the peer's MAC, which proves Write reached it.
		reply := make([]byte, 42)
		copy(reply[0:6], arp[6:12])
		copy(reply[6:12], peerMAC)
		binary.BigEndian.PutUint16(reply[12:], 0x0806)
		copy(reply[14:22], []byte{0, 1, 8, 0, 6, 4, 0, 2})
		copy(reply[22:28], peerMAC)
		copy(reply[28:32], []byte{10, 199, 0, 2})
		copy(reply[32:38], arp[22:28])
		copy(reply[38:42], arp[28:32])
		if err := writeFrame(dev, reply); err != nil {
			t.Error(err)
			return
		}
		readUntil(t, dev, func(f []byte) bool {
			return len(f) > 14 && bytes.Equal(f[0:6], peerMAC) && binary.BigEndian.Uint16(f[12:]) == 0x0800 && bytes.HasSuffix(f, []byte("hello"))
		})
	})
}

// readUntil reads frames until match accepts one. After 5 s it closes the
// device, which ends a Read blocked on a TAP that never delivers, and fails.
func readUntil(t *testing.T, dev Device, match func([]byte) bool) []byte {
	t.Helper()
	timer := time.AfterFunc(5*time.Second, func() { dev.Close() })
	defer timer.Stop()
	bufs := make([][]byte, dev.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+ethdev.MaxFrame(dev.MTU(), dev.Offload()))
	}
	sizes := make([]int, len(bufs))
	for {
		n, err := dev.Read(bufs, sizes, Headroom)
		if err != nil {
			t.Errorf("no matching frame on %s within 5s (read: %v)", dev.Name(), err)
			return nil
		}
		for i := range n {
			if f := bufs[i][Headroom : Headroom+sizes[i]]; match(f) {
				return f
			}
		}
	}
}

// writeFrame writes one ordinary frame (a zero virtio_net_hdr before it).
func writeFrame(dev Device, f []byte) error {
	b := make([]byte, Headroom+len(f))
	copy(b[Headroom:], f)
	_, err := dev.Write([][]byte{b}, Headroom)
	return err
}

func TestAddToBridgeJoinsBridgeOrBridgesAPlainInterface(t *testing.T) {
	inPrivateNetns(t, func() {
		dev, err := Open("", Options{})
		if err != nil {
			t.Error(err)
			return
		}
		defer dev.Close()
		// A plain interface: a bridge is created with it and the TAP as ports.
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hfv0"}, PeerName: "hfv1"}); err != nil {
			t.Error(err)
			return
		}
		br, err := AddToBridge(dev.Name(), "hfv0")
		if err != nil {
			t.Error(err)
			return
		}
		if br != "hfbr-hfv0" || !IsBridge(br) {
			t.Errorf("AddToBridge with a plain interface joined %q (bridge: %v), want a new bridge hfbr-hfv0", br, IsBridge(br))
		}
		for _, port := range []string{dev.Name(), "hfv0"} {
			if m := Master(port); m != br {
				t.Errorf("%s has master %q, want %q", port, m, br)
			}
		}
		// An existing bridge is joined as it is.
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "hfbrx"}}); err != nil {
			t.Error(err)
			return
		}
		if br, err := AddToBridge(dev.Name(), "hfbrx"); err != nil || br != "hfbrx" || Master(dev.Name()) != "hfbrx" {
			t.Errorf("AddToBridge with a bridge = %q, %v (master %q), want hfbrx", br, err, Master(dev.Name()))
		}
		if _, err := AddToBridge(dev.Name(), "nosuchif"); err == nil {
			t.Error("AddToBridge with a missing interface succeeded")
		}
	})
}

func TestOpenRejectsNamesTheKernelCannotHold(t *testing.T) {
	for _, name := range []string{"a-name-longer-than-15", "has/slash", "has space"} {
		if _, err := Open(name, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", name)
		}
	}
}

// A frame longer than the buffer Read is given is dropped and counted, never
// returned cut short, and the next frame that fits comes through.
func TestReadDropsFrameLongerThanBuffer(t *testing.T) {
	for _, o := range []Options{{}, {Offload: true}} {
		inPrivateNetns(t, func() {
			dev, err := Open("hftest1", o)
			if err != nil {
				t.Error(err)
				return
			}
			defer dev.Close()
			peer := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
			for _, err := range []error{SetMTU(dev.Name(), 9000), SetUp(dev.Name()), AddAddress(dev.Name(), "10.199.1.1/24")} {
				if err != nil {
					t.Error(err)
					return
				}
			}
			// A permanent neighbour: the datagrams leave at once, with no ARP.
			l, err := netlink.LinkByName(dev.Name())
			if err == nil {
				err = netlink.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index, State: netlink.NUD_PERMANENT, IP: net.IPv4(10, 199, 1, 2), HardwareAddr: peer})
			}
			if err != nil {
				t.Error(err)
				return
			}
			udp, err := net.Dial("udp4", "10.199.1.2:9")
			if err != nil {
				t.Error(err)
				return
			}
			defer udp.Close()
			if _, err := udp.Write(make([]byte, 4000)); err != nil {
				t.Error(err)
				return
			}
			if _, err := udp.Write([]byte("fits")); err != nil {
				t.Error(err)
				return
			}
			const room = 2048
			timer := time.AfterFunc(5*time.Second, func() { dev.Close() })
			defer timer.Stop()
			bufs := [][]byte{make([]byte, Headroom+room)}
			sizes := make([]int, 1)
			for {
				n, err := dev.Read(bufs, sizes, Headroom)
				if err != nil {
					t.Errorf("%+v: the short datagram never came (read: %v)", o, err)
					return
				}
				if n != 1 || sizes[0] > room {
					t.Errorf("%+v: Read returned %d frames, the first of %d bytes in a %d-byte buffer", o, n, sizes[0], room)
					return
				}
				f := bufs[0][Headroom : Headroom+sizes[0]]
				if bytes.HasSuffix(f, make([]byte, 64)) && len(f) == room {
					t.Errorf("%+v: the 4000-byte datagram came back cut to the buffer", o)
					return
				}
				if bytes.Equal(f[:6], peer) && bytes.HasSuffix(f, []byte("fits")) {
					break
				}
			}
			if st := StatsOf(dev); st.Dropped == 0 {
				t.Errorf("%+v: stats %+v: the long frame was not counted as dropped", o, st)
			}
		})
	}
}
