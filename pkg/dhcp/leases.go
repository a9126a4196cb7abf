// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"net/netip"
	"time"
)

// BoundByMAC returns the address of every bound, unexpired lease by the
// hardware address it was leased to, for a session listing (which address
// a session's station holds). One pass over the table under the lock.
func (s *Server) BoundByMAC(now time.Time) map[[6]byte]netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[[6]byte]netip.Addr)
	for _, l := range s.pool.byKey {
		if l.Bound && now.Before(l.Expiry) {
			out[l.MAC] = l.Addr
		}
	}
	return out
}
