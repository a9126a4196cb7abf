// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !linux

package protocol

import "net"

// WrapTCP is Linux's batching of a session's TCP writes (conn_tcp_linux.go);
// elsewhere the connection is used as it is.
func WrapTCP(c net.Conn) net.Conn { return c }
