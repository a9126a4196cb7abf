// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux && race

package protocol

// rawIO is off under the race detector: it learns that a write to a socket
// happens before the read that returns its bytes only from net.Conn's own
// Read and Write (internal/poll tells it), so raw system calls would make it
// report races between goroutines that synchronise through a connection.
// Batching stays on, so race tests still cover hold and flush.
const rawIO = false
