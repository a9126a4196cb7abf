// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"errors"
	"runtime"
	"strconv"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// optBool is a boolean flag that knows whether it was given.
type optBool struct{ set, on bool }

func (b *optBool) String() string   { return strconv.FormatBool(b.on) }
func (b *optBool) IsBoolFlag() bool { return true }
func (b *optBool) Set(s string) (err error) {
	b.set = true
	b.on, err = strconv.ParseBool(s)
	return err
}

// resolve decides DHCP for connect: asked for, or by default when the TAP
// gets no --address (a host on a hub with spec.dhcp then needs no flag),
// on Linux, where the DHCP client runs. A bridge never: its TAP joins a LAN.
func (b *optBool) resolve(kind sessionkind.Kind, address string) (bool, error) {
	switch {
	case kind != sessionkind.Client:
		return false, nil
	case b.set && b.on && address != "":
		return false, errors.New("--dhcp and --address exclude each other: give one")
	case b.set:
		return b.on, nil
	}
	return address == "" && runtime.GOOS == "linux", nil
}
