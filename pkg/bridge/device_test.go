// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package bridge

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

func inPrivateNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and packet sockets")
	}
	testutil.InPrivateNetns(t, fn)
}

// superFrame is a TCP/IPv4 super-frame as a sender with segmentation
// offload hands it over, cut into 1448-byte segments (testutil.TCPSuperFrame).
func superFrame(n int) ([]byte, gso.Meta) {
	return testutil.TCPSuperFrame([6]byte{2, 0, 0, 0, 0, 0xb}, [6]byte{2, 0, 0, 0, 0, 0xa}, false, false, n, 1448)
}

// A super-frame the hub hands the LAN bridge (from a client with offloads)
// reaches the LAN as MTU-sized segments with correct checksums, all of its
// payload in order; an ordinary frame passes as it is.
func TestPacketDeviceSplitsSuperFramesForTheLAN(t *testing.T) {
	inPrivateNetns(t, func() {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hfl0"}, PeerName: "hfl1"}
		if err := netlink.LinkAdd(v); err != nil {
			t.Error(err)
			return
		}
		for _, n := range []string{"hfl0", "hfl1"} {
			l, err := netlink.LinkByName(n)
			if err == nil {
				err = netlink.LinkSetUp(l)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
		// The LAN side: a packet socket on the veth's other end.
		peer, err := netlink.LinkByName("hfl1")
		if err != nil {
			t.Error(err)
			return
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: peer.Attrs().Index}); err != nil {
			t.Error(err)
			return
		}
		tv := unix.NsecToTimeval(int64(5 * time.Second))
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

		dev, err := Open("hfl0", 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer dev.Close()
		if dev.Offload().Any() || dev.MTU() != 1500 {
			t.Errorf("Offload %+v MTU %d, want none and 1500", dev.Offload(), dev.MTU())
		}
		super, meta := superFrame(60000)
		plain, _ := superFrame(100)
		plainMeta := gso.Meta{}
		gso.FinishChecksum(plain, 34, 16)
		bufs := make([][]byte, 2)
		for i, c := range []struct {
			f []byte
			m gso.Meta
		}{{super, meta}, {plain, plainMeta}} {
			bufs[i] = make([]byte, gso.VirtioLen+len(c.f))
			c.m.PutVirtio(bufs[i])
			copy(bufs[i][gso.VirtioLen:], c.f)
		}
		if n, err := dev.Write(bufs, gso.VirtioLen); err != nil || n != 2 {
			t.Errorf("Write = %d, %v", n, err)
			return
		}
		wantSegs := (60000 + 1447) / 1448
		var payload []byte
		buf := make([]byte, 65536)
		for i := 0; i < wantSegs+1; i++ {
			n, err := unix.Read(fd, buf)
			if err != nil {
				t.Errorf("segment %d of %d never reached the LAN: %v", i+1, wantSegs, err)
				return
			}
			f := buf[:n]
			if n > 1514 {
				t.Errorf("a %d-byte frame reached a LAN with MTU 1500", n)
				return
			}
			if c := gso.CsumFold(gso.CsumAdd(0, f[14:34])); c != 0xffff {
				t.Errorf("segment %d: IPv4 header checksum wrong", i)
			}
			tcp := f[34:]
			if c := gso.CsumFold(gso.CsumAdd(gso.CsumAdd(0, f[26:34])+6+uint64(len(tcp)), tcp)); c != 0xffff {
				t.Errorf("segment %d: TCP checksum wrong", i)
			}
			if i < wantSegs {
				payload = append(payload, tcp[20:]...)
			} else if !bytes.Equal(f, plain) {
				t.Error("the ordinary frame after the super-frame changed on the way")
			}
		}
		if !bytes.Equal(payload, super[54:]) {
			t.Errorf("the LAN got %d bytes of payload, not the super-frame's %d in order", len(payload), len(super)-54)
		}
		if st := dev.Stats(); st.Segmented != 1 || st.TxFrames != uint64(wantSegs+1) {
			t.Errorf("stats %+v, want 1 segmented and %d sent", st, wantSegs+1)
		}
	})
}
