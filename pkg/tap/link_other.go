// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !linux

package tap

import (
	"fmt"
	"runtime"
)

// Off Linux the client configures nothing on the TAP itself: the
// administrator sets MTU, state and addresses with the system's own tools.

func unsupported(what string) error {
	return fmt.Errorf("%s is implemented for Linux only, not %s: configure the TAP with the system's tools and leave the option out", what, runtime.GOOS)
}

func linkMTU(string) int { return 0 }

// LinkMTU reads an interface's MTU.
func LinkMTU(name string) (int, error) { return 0, unsupported("reading the MTU of " + name) }

// SetMTU sets an interface's MTU.
func SetMTU(name string, mtu int) error { return unsupported("setting the MTU") }

// SetUp brings an interface up.
func SetUp(name string) error { return unsupported("bringing " + name + " up") }

// AddAddress assigns an address in CIDR notation to an interface.
func AddAddress(name, cidr string) error { return unsupported("--address") }

// IsBridge reports whether name is a Linux bridge.
func IsBridge(name string) bool { return false }

// Master is the bridge name is a port of, or "" if none.
func Master(name string) string { return "" }

// AddToBridge makes dev a port of a Linux bridge.
func AddToBridge(dev, bridge string) (string, error) { return "", unsupported("--bridge") }

// BridgeNameFor is the name of the bridge AddToBridge creates for a plain
// interface.
func BridgeNameFor(iface string) string {
	n := "hfbr-" + iface
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}
