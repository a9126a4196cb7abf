//go:build !unix

package hub

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
