// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"fmt"
	"os"
	"sort"
	"testing"
	"time"
)

// ResultsFile collects the figures the tests measure (one line each, appended),
// for docs/benchmarks-e2e.md: $HUBFLEET_E2E_RESULTS or /tmp/hubfleet-e2e-results.txt.
func ResultsFile() string {
	if f := os.Getenv("HUBFLEET_E2E_RESULTS"); f != "" {
		return f
	}
	return "/tmp/hubfleet-e2e-results.txt"
}

// Record logs a measured figure and appends it, timestamped and named after the
// test, to ResultsFile.
func Record(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log("RESULT " + line)
	f, err := os.OpenFile(ResultsFile(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("cannot write %s: %v", ResultsFile(), err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), t.Name(), line)
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method: with 10 samples p99 is the largest.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(float64(len(s))*p/100 + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

// Summary formats min, p50, p99 and max of ds in seconds.
func Summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d min %.2fs p50 %.2fs p99 %.2fs max %.2fs",
		len(ds), Percentile(ds, 0.0001).Seconds(), Percentile(ds, 50).Seconds(), Percentile(ds, 99).Seconds(), Percentile(ds, 100).Seconds())
}
