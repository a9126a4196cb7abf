//go:build unix

package hub

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the test process has used.
// On a shared VM a benchmark's wall time includes time its threads waited
// for a CPU; CPU time per frame does not, so it is the steadier cost figure.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
