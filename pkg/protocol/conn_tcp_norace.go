// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux && !race

package protocol

// rawIO: WrapTCP reads and writes with raw system calls (conn_tcp_race.go
// says why not under the race detector).
const rawIO = true
