//go:build unix

package protocol

import (
	"syscall"
	"time"
)

// processCPU is the user and system CPU time the process has used. Benchmarks
// report CPU per frame beside wall-clock rates because on a shared machine the
// wall clock mostly measures the neighbours.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
