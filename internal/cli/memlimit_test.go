// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"io/fs"
	"math"
	"runtime/debug"
	"testing"
)

func files(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := m[p]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
}

// In a container with a memory limit the GC must aim below it, or a login
// storm's garbage gets the member OOM-killed before the GC's doubling target
// is reached.
func TestSoftMemoryLimitFollowsTheContainer(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	none := func(string) string { return "" }
	for _, tc := range []struct {
		name  string
		files map[string]string
		env   string
		want  int64
	}{
		{"cgroup v2 limit", map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n"}, "", 268435456 - 268435456/10},
		{"cgroup v2 unlimited", map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, "", 0},
		{"cgroup v1 limit", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "134217728\n"}, "", 134217728 - 134217728/10},
		{"cgroup v1 unlimited", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, "", 0},
		{"no cgroup", nil, "", 0},
		{"GOMEMLIMIT wins", map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n"}, "200MiB", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			getenv := none
			if tc.env != "" {
				getenv = func(k string) string {
					if k == "GOMEMLIMIT" {
						return tc.env
					}
					return ""
				}
			}
			got := setMemoryLimitFromCgroup(getenv, files(tc.files))
			if got != tc.want {
				t.Errorf("soft limit %d, want %d", got, tc.want)
			}
			want := tc.want
			if want == 0 {
				want = math.MaxInt64
			}
			if now := debug.SetMemoryLimit(-1); now != want {
				t.Errorf("runtime memory limit %d, want %d", now, want)
			}
		})
	}
}
