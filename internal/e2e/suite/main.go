// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command suite is `make e2e`: it brings the local cluster up once, runs
// `go test -p 1 <args>` on the e2e packages against it, and brings it down
// (e2e.RunSuite, docs/e2e.md). Its arguments are go test's, e.g.
//
//	go run ./internal/e2e/suite -count=1 -v -run TestHubIsolation ./test/e2e/...
package main

import (
	"os"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

func main() { os.Exit(e2e.RunSuite(os.Args[1:])) }
