// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package tap

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link state and MTU are set with ioctls on an AF_INET socket: one syscall
// each, no socket to rtnetlink. Addresses and bridges need rtnetlink (IPv6
// addresses, bridge ports), which vishvananda/netlink speaks directly: the
// member and client images are distroless, without iproute2 to run, and
// typed replies leave no text to parse.

func ifreqCall(name string, req uint, set func(*unix.Ifreq)) (*unix.Ifreq, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("interface name %q: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a socket for interface ioctls: %w", err)
	}
	defer unix.Close(fd)
	if set != nil {
		set(ifr)
	}
	if err := unix.IoctlIfreq(fd, req, ifr); err != nil {
		return nil, err
	}
	return ifr, nil
}

// LinkMTU reads an interface's MTU.
func LinkMTU(name string) (int, error) {
	ifr, err := ifreqCall(name, unix.SIOCGIFMTU, nil)
	if err != nil {
		return 0, fmt.Errorf("reading the MTU of %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

func linkMTU(name string) int {
	mtu, err := LinkMTU(name)
	if err != nil {
		return 0
	}
	return mtu
}

// SetMTU sets an interface's MTU (the IP payload of a frame, 68..65535 for IPv4).
func SetMTU(name string, mtu int) error {
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("MTU %d for %s is outside 68..65535", mtu, name)
	}
	_, err := ifreqCall(name, unix.SIOCSIFMTU, func(r *unix.Ifreq) { r.SetUint32(uint32(mtu)) })
	if err != nil {
		return fmt.Errorf("setting the MTU of %s to %d: %w%s", name, mtu, err, permHint(err))
	}
	return nil
}

// SetUp brings an interface up (ip link set NAME up).
func SetUp(name string) error {
	ifr, err := ifreqCall(name, unix.SIOCGIFFLAGS, nil)
	if err != nil {
		return fmt.Errorf("reading the flags of %s: %w", name, err)
	}
	flags := ifr.Uint16() | unix.IFF_UP
	if _, err := ifreqCall(name, unix.SIOCSIFFLAGS, func(r *unix.Ifreq) { r.SetUint16(flags) }); err != nil {
		return fmt.Errorf("bringing %s up: %w%s", name, err, permHint(err))
	}
	return nil
}

func permHint(err error) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return ": run as root or grant CAP_NET_ADMIN"
	}
	return ""
}

// AddAddress assigns an address in CIDR notation (IPv4 or IPv6, such as
// 172.31.0.1/24) to an interface; assigning one it already has is not an error,
// so a restarted client can reapply its configuration.
func AddAddress(name, cidr string) error {
	if _, err := netip.ParsePrefix(cidr); err != nil {
		return fmt.Errorf("address %q is not in CIDR notation such as 172.31.0.1/24 or fd00::1/64: %w", cidr, err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return fmt.Errorf("address %q: %w", cidr, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("adding %s to %s: %w", cidr, name, err)
	}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("adding %s to %s: %w%s", cidr, name, err, permHint(err))
	}
	return nil
}

// IsBridge reports whether name is a Linux bridge. It asks rtnetlink, not
// /sys, which shows the namespace /sys was mounted in rather than the
// caller's.
func IsBridge(name string) bool {
	l, err := netlink.LinkByName(name)
	return err == nil && l.Type() == "bridge"
}

// Master is the bridge name is a port of, or "" if none.
func Master(name string) string {
	l, err := netlink.LinkByName(name)
	if err != nil || l.Attrs().MasterIndex == 0 {
		return ""
	}
	m, err := netlink.LinkByIndex(l.Attrs().MasterIndex)
	if err != nil {
		return ""
	}
	return m.Attrs().Name
}

// AddToBridge makes dev a port of bridge and returns the bridge it joined. If
// bridge is a Linux bridge, dev joins it. If it is any other interface (a NIC, a
// veth), a new bridge named BridgeNameFor(bridge) is created (or reused), and both
// the interface and dev become its ports. The interface's IP addresses are not
// moved to the new bridge: a host that reaches the network through that interface
// should bridge it beforehand, or move its addresses to the bridge itself.
func AddToBridge(dev, bridge string) (string, error) {
	link, err := netlink.LinkByName(bridge)
	if err != nil {
		return "", fmt.Errorf("interface %q to bridge with does not exist: give an existing Linux bridge or network interface (see `ip link`)", bridge)
	}
	port, err := netlink.LinkByName(dev)
	if err != nil {
		return "", fmt.Errorf("interface %q to add to bridge %s: %w", dev, bridge, err)
	}
	br := link
	if link.Type() != "bridge" {
		name := BridgeNameFor(bridge)
		if br, err = netlink.LinkByName(name); err != nil || br.Type() != "bridge" {
			nb := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
			if err := netlink.LinkAdd(nb); err != nil {
				return "", fmt.Errorf("creating bridge %s for %s: %w%s", name, bridge, err, permHint(err))
			}
			if br, err = netlink.LinkByName(name); err != nil {
				return "", fmt.Errorf("bridge %s: %w", name, err)
			}
		}
		if err := netlink.LinkSetMaster(link, br); err != nil {
			return "", fmt.Errorf("adding %s to bridge %s: %w%s", bridge, name, err, permHint(err))
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return "", fmt.Errorf("bringing %s up: %w%s", bridge, err, permHint(err))
		}
	}
	if err := netlink.LinkSetMaster(port, br); err != nil {
		return "", fmt.Errorf("adding %s to bridge %s: %w%s", dev, br.Attrs().Name, err, permHint(err))
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return "", fmt.Errorf("bringing bridge %s up: %w%s", br.Attrs().Name, err, permHint(err))
	}
	return br.Attrs().Name, nil
}

// BridgeNameFor is the name of the bridge AddToBridge creates for a plain
// interface: "hfbr-" and as much of the interface name as fits in 15 characters.
func BridgeNameFor(iface string) string {
	n := "hfbr-" + iface
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}
