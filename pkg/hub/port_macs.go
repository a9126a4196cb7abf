// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package hub

// MACs appends to dst the station addresses the switch learned behind the
// port (any VLAN), for a session listing: which DHCP lease is the
// session's. It takes the table lock once; not for the frame path.
func (p *Port) MACs(dst [][6]byte) [][6]byte {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	for key := range p.macs {
		m := key & (1<<48 - 1)
		dst = append(dst, [6]byte{byte(m >> 40), byte(m >> 32), byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
	}
	return dst
}
