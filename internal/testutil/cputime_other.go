// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !unix

package testutil

import "time"

// ProcessCPU is not available here; benchmarks then report wall-clock rates only.
func ProcessCPU() (time.Duration, bool) { return 0, false }
