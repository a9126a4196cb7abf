package tap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Link state and MTU are set with ioctls on an AF_INET socket: they are needed on
// every start, cost one syscall, and must work in a distroless image that has no
// iproute2. Addresses and bridges go through the `ip` command instead: they are
// optional conveniences that need rtnetlink (IPv6 addresses, bridge ports), and
// `ip` is what an administrator would run by hand, so its error text is familiar.

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
	if err == unix.EPERM || err == unix.EACCES {
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
	return ip("addr", "replace", cidr, "dev", name)
}

// IsBridge reports whether name is a Linux bridge. It asks rtnetlink (through
// ip), not /sys, which shows the namespace /sys was mounted in rather than the
// caller's.
func IsBridge(name string) bool {
	l, err := showLink(name)
	return err == nil && l.LinkInfo.Kind == "bridge"
}

// Master is the bridge name is a port of, or "" if none.
func Master(name string) string {
	l, err := showLink(name)
	if err != nil {
		return ""
	}
	return l.Master
}

type linkJSON struct {
	Master   string `json:"master"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func showLink(name string) (linkJSON, error) {
	out, err := exec.Command("ip", "-j", "-d", "link", "show", "dev", name).Output()
	if err != nil {
		return linkJSON{}, err
	}
	var ls []linkJSON
	if err := json.Unmarshal(out, &ls); err != nil || len(ls) != 1 {
		return linkJSON{}, fmt.Errorf("unexpected output of ip -j link show %s: %s", name, out)
	}
	return ls[0], nil
}

// AddToBridge makes dev a port of bridge and returns the bridge it joined. If
// bridge is a Linux bridge, dev joins it. If it is any other interface (a NIC, a
// veth), a new bridge named BridgeNameFor(bridge) is created (or reused), and both
// the interface and dev become its ports. The interface's IP addresses are not
// moved to the new bridge: a host that reaches the network through that interface
// should bridge it beforehand, or move its addresses to the bridge itself.
func AddToBridge(dev, bridge string) (string, error) {
	if _, err := net.InterfaceByName(bridge); err != nil {
		return "", fmt.Errorf("interface %q to bridge with does not exist: give an existing Linux bridge or network interface (see `ip link`)", bridge)
	}
	br := bridge
	if !IsBridge(bridge) {
		br = BridgeNameFor(bridge)
		if !IsBridge(br) {
			if err := ip("link", "add", "name", br, "type", "bridge"); err != nil {
				return "", err
			}
		}
		if err := ip("link", "set", "dev", bridge, "master", br); err != nil {
			return "", err
		}
		if err := ip("link", "set", "dev", bridge, "up"); err != nil {
			return "", err
		}
	}
	if err := ip("link", "set", "dev", dev, "master", br); err != nil {
		return "", err
	}
	if err := ip("link", "set", "dev", br, "up"); err != nil {
		return "", err
	}
	return br, nil
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

func ip(args ...string) error {
	cmd := exec.Command("ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if _, lookErr := exec.LookPath("ip"); lookErr != nil {
			return fmt.Errorf("`ip %s` needs the ip command from iproute2, which is not installed: install iproute2, or configure the interface yourself and leave this option out", strings.Join(args, " "))
		}
		return fmt.Errorf("`ip %s` failed: %s (%w)", strings.Join(args, " "), strings.TrimSpace(out.String()), err)
	}
	return nil
}
