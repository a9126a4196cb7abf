// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !linux

package bridge

import (
	"errors"
	"runtime"
)

// DefaultBatch is how many frames one Read or Write moves.
const DefaultBatch = 32

// Open is Linux-only: the local bridge uses an AF_PACKET socket.
func Open(name string, batch int) (Device, error) {
	return nil, errors.New("local bridge to " + name + ": AF_PACKET sockets exist only on Linux, not " + runtime.GOOS)
}
