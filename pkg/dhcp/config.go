// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Settings are a pool as an administrator writes it (VirtualHub.spec.dhcp,
// a member file's hubs[].dhcp): text, checked by Config.
type Settings struct {
	Prefix       string   // 10.8.0.0/24
	RangeStart   string   // 10.8.0.10: the server's own address
	RangeEnd     string   // 10.8.0.200
	Router       string   // optional
	DNSServers   []string // optional
	LeaseSeconds int      // 0: DefaultLease
}

// Defaults.
const (
	DefaultLease        = time.Hour
	MinLease            = 10 * time.Second
	DefaultProbeTimeout = 250 * time.Millisecond
)

// Config is a checked pool.
type Config struct {
	Prefix     netip.Prefix
	Start, End netip.Addr // the range; Start is the server's address, the rest is leased
	Router     netip.Addr // invalid: none
	DNS        []netip.Addr
	Lease      time.Duration
	// ServerMAC is the server's Ethernet address. A hub's server always has
	// the same one (MACFor), so a client that renews by unicast after the
	// server moved still reaches it through its ARP cache.
	ServerMAC [6]byte
	// ProbeTimeout is how long an ARP probe waits for an answer before the
	// address is taken to be free. On a virtual segment a live host answers
	// in a few milliseconds; the default leaves room for a loaded member
	// within the 1 s time-to-address target.
	ProbeTimeout time.Duration
}

// ServerIP is the address the server answers from: the range's first.
func (c *Config) ServerIP() netip.Addr { return c.Start }

// MACFor is the server MAC of a hub: locally administered, unicast, and the
// same on every member, derived from the hub's name.
func MACFor(hub string) [6]byte {
	h := sha256.Sum256([]byte("hubfleet dhcp server\x00" + hub))
	var m [6]byte
	copy(m[:], h[:6])
	m[0] = m[0]&^0x01 | 0x02
	return m
}

// Config checks s and returns the pool it describes. Each error names the
// field (as spelt in the VirtualHub and the member file) and how to fix it.
func (s Settings) Config() (*Config, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c := &Config{Lease: DefaultLease, ProbeTimeout: DefaultProbeTimeout}
	pfx, err := netip.ParsePrefix(s.Prefix)
	switch {
	case err != nil || !pfx.Addr().Is4():
		fail("prefix %q is not an IPv4 prefix: write it like 10.8.0.0/24", s.Prefix)
	case pfx != pfx.Masked():
		fail("prefix %q has address bits set after the length: write %s", s.Prefix, pfx.Masked())
	case pfx.Bits() > 30:
		fail("prefix %q leaves no room for a server and a client: use /30 or shorter, such as /24", s.Prefix)
	default:
		c.Prefix = pfx
	}
	ip := func(field, v string) netip.Addr {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			fail("%s %q is not an IPv4 address: write it like 10.8.0.10", field, v)
			return netip.Addr{}
		}
		if c.Prefix.IsValid() && !c.Prefix.Contains(a) {
			fail("%s %s is outside prefix %s: pick an address inside it", field, a, c.Prefix)
			return netip.Addr{}
		}
		return a
	}
	c.Start = ip("rangeStart", s.RangeStart)
	c.End = ip("rangeEnd", s.RangeEnd)
	if c.Start.IsValid() && c.End.IsValid() {
		if c.Start.Compare(c.End) >= 0 {
			fail("rangeStart %s is not below rangeEnd %s: the server answers from rangeStart, so the range needs at least two addresses", c.Start, c.End)
		}
		if net, bcast := c.Prefix.Addr(), lastOf(c.Prefix); c.Prefix.IsValid() && (c.Start == net || c.End == bcast) {
			fail("rangeStart/rangeEnd %s-%s include the network (%s) or broadcast (%s) address of %s: start above the one and end below the other", c.Start, c.End, net, bcast, c.Prefix)
		}
	}
	if s.Router != "" {
		if c.Router = ip("router", s.Router); c.Router.IsValid() && c.Start.IsValid() && c.End.IsValid() &&
			c.Router.Compare(c.Start) >= 0 && c.Router.Compare(c.End) <= 0 {
			fail("router %s is inside the range %s-%s: a router has a fixed address; move it or the range", c.Router, c.Start, c.End)
		}
	}
	for i, d := range s.DNSServers {
		a, err := netip.ParseAddr(d)
		if err != nil || !a.Is4() {
			fail("dnsServers[%d] %q is not an IPv4 address: write it like 10.8.0.1", i, d)
			continue
		}
		c.DNS = append(c.DNS, a)
	}
	if s.LeaseSeconds != 0 {
		c.Lease = time.Duration(s.LeaseSeconds) * time.Second
		if c.Lease < MinLease {
			fail("leaseSeconds %d is under %d: clients renew at half the lease, so shorter leases flood the hub with renewals", s.LeaseSeconds, int(MinLease/time.Second))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func u32(a netip.Addr) uint32 { v := a.As4(); return binary.BigEndian.Uint32(v[:]) }

func fromU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func lastOf(p netip.Prefix) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	return fromU32(u32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}
