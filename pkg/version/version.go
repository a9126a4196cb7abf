// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package version holds the build's version, stamped with -ldflags -X at build time.
package version

// Version is overwritten by `-ldflags "-X github.com/hubfleet/hubfleet/pkg/version.Version=..."`.
var Version = "v0.1.0-dev"

// Commit is the source commit, stamped the same way.
var Commit = "unknown"
