// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package testutil holds small helpers that several packages' tests and benchmarks
// share, so each is written once.
package testutil

import (
	"bytes"
	"sync"
)

// SyncBuffer collects output (logs, status lines) written from another goroutine,
// such as a client's or a child process's, while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
