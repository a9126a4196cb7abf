// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryFiles are where a container's memory limit is read: cgroup v2,
// then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// softMemoryLimit is the Go soft memory limit for a process in a container
// whose memory limit is limit bytes: 90 %, leaving the rest for memory the Go
// runtime does not count (thread stacks, cgo allocations, mappings).
func softMemoryLimit(limit int64) int64 { return limit - limit/10 }

// cgroupMemoryLimit reads the container's memory limit; ok is false when
// there is none ("max", or v1's page-rounded 2^63).
func cgroupMemoryLimit(read func(string) ([]byte, error)) (limit int64, ok bool) {
	for _, f := range cgroupMemoryFiles {
		b, err := read(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, false // "max", or v1's "no limit"
		}
		return n, true
	}
	return 0, false
}

// setMemoryLimitFromCgroup gives the Go runtime a soft memory limit below the
// container's, unless GOMEMLIMIT sets one: the GC then collects harder as the
// heap nears the limit (a password-login storm allocates 19 MiB per attempt)
// instead of letting the kernel kill the member. It returns the limit set, or 0.
func setMemoryLimitFromCgroup(getenv func(string) string, read func(string) ([]byte, error)) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, ok := cgroupMemoryLimit(read)
	if !ok {
		return 0
	}
	soft := softMemoryLimit(limit)
	debug.SetMemoryLimit(soft)
	return soft
}
