// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !linux

package client

import (
	"context"
	"errors"
)

// runDHCP: the DHCP client reads the TAP through a Linux packet socket.
func (c *client) runDHCP(context.Context) error {
	return &Error{Reason: ReasonConfig, Err: errors.New("--dhcp needs Linux (a packet socket on the TAP): give --address instead")}
}
