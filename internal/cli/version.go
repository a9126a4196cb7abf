// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"fmt"
	"runtime"

	"github.com/hubfleet/hubfleet/pkg/version"
)

func init() {
	Register(Command{Name: "version", Summary: "print the version", Run: runVersion})
}

func runVersion(args []string) int {
	fs := newFlagSet("version", Help{
		Usage:    "hubfleet version",
		About:    "Prints the version, the commit it was built from and the Go release.",
		Examples: []string{"hubfleet version", "kubectl exec vpn-member-0 -- hubfleet version"},
	})
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hubfleet version: takes no arguments, got %q\n", fs.Args())
		return ExitUsage
	}
	fmt.Fprintf(stdout, "hubfleet %s (commit %s, %s)\n", version.Version, version.Commit, runtime.Version())
	return ExitOK
}
