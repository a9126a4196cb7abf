// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import "github.com/hubfleet/hubfleet/pkg/sessionkind"

func init() {
	Register(Command{Name: "bridge", Summary: "join a local Linux bridge or interface to a hub (VPN bridge, bridge license)",
		Run: func(args []string) int { return runVPN("bridge", sessionkind.Bridge, args) }})
}
