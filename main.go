// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command hubfleet is the single binary of hubfleet: the operator, the member server,
// the VPN client and bridge, and small tools. See `hubfleet help`.
package main

import (
	"os"

	"github.com/hubfleet/hubfleet/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
