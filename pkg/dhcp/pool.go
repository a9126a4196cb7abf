// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"errors"
	"hash/fnv"
	"net/netip"
	"time"
)

// Lease is one client's binding to an address.
type Lease struct {
	Key    string // ClientKey: the client identifier, else the MAC
	MAC    [6]byte
	Addr   netip.Addr
	Expiry time.Time
	// Bound is false for an address only offered (held for the client's
	// REQUEST), true once acknowledged.
	Bound bool
}

// ClientKey identifies a client as RFC 2131 4.2 says: by its client
// identifier (option 61) when it sends one, else by its hardware address.
func ClientKey(clientID []byte, mac [6]byte) string {
	if len(clientID) > 0 {
		return "id:" + string(clientID)
	}
	return "hw:" + string(mac[:])
}

// Pool errors.
var (
	ErrNotInPool = errors.New("address is not in the pool")
	ErrTaken     = errors.New("address is leased to another client")
	ErrBlocked   = errors.New("address is quarantined (declined, or answered an ARP probe)")
	ErrExhausted = errors.New("no free address in the pool")
)

// Pool hands out the addresses Start+1..End of a Config. A client keeps its
// address: its lease stays recorded after it expires, and another client
// gets that address only when no never-leased or longer-expired one is left.
// A new client's search starts at a hash of its key, so its first address
// does not depend on the order clients arrived in: a server that restarted
// with an empty table tends to offer the same addresses again.
//
// Pool is not safe for concurrent use.
type Pool struct {
	first, size uint32
	lease       time.Duration
	byKey       map[string]*Lease
	byAddr      map[uint32]*Lease
	blocked     map[uint32]time.Time // quarantined until
}

// NewPool returns an empty pool over c's range.
func NewPool(c *Config) *Pool {
	return &Pool{
		first: u32(c.Start) + 1, size: u32(c.End) - u32(c.Start),
		lease:   c.Lease,
		byKey:   map[string]*Lease{},
		byAddr:  map[uint32]*Lease{},
		blocked: map[uint32]time.Time{},
	}
}

// Size is the number of addresses the pool leases.
func (p *Pool) Size() int { return int(p.size) }

// InUse counts bound leases that have not expired.
func (p *Pool) InUse(now time.Time) int {
	n := 0
	for _, l := range p.byKey {
		if l.Bound && now.Before(l.Expiry) {
			n++
		}
	}
	return n
}

// Contains reports whether a is one of the pool's addresses.
func (p *Pool) Contains(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	v := u32(a)
	return v >= p.first && v-p.first < p.size
}

// Lookup returns key's lease (expired or not), or nil.
func (p *Pool) Lookup(key string) *Lease { return p.byKey[key] }

// check says whether key may have a: in the pool, not quarantined, and not
// held (offered or bound, unexpired) by another client.
func (p *Pool) check(key string, a netip.Addr, now time.Time) error {
	if !p.Contains(a) {
		return ErrNotInPool
	}
	v := u32(a)
	if until, ok := p.blocked[v]; ok {
		if now.Before(until) {
			return ErrBlocked
		}
		delete(p.blocked, v)
	}
	if l := p.byAddr[v]; l != nil && l.Key != key && now.Before(l.Expiry) {
		return ErrTaken
	}
	return nil
}

// Free reports whether key may take a.
func (p *Pool) Free(key string, a netip.Addr, now time.Time) bool { return p.check(key, a, now) == nil }

// Pick chooses the address to offer key, skipping those in avoid (addresses
// an ARP probe found in use during this exchange): key's own address, else
// the one it asked for, else a never-leased one from a point the key hashes
// to, else the one whose lease expired longest ago.
func (p *Pool) Pick(key string, requested netip.Addr, now time.Time, avoid func(netip.Addr) bool) (netip.Addr, error) {
	ok := func(a netip.Addr) bool { return p.check(key, a, now) == nil && (avoid == nil || !avoid(a)) }
	if l := p.byKey[key]; l != nil && ok(l.Addr) {
		return l.Addr, nil
	}
	if requested.IsValid() && ok(requested) {
		return requested, nil
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	start := h.Sum32() % p.size
	var oldest *Lease
	for i := range p.size {
		a := fromU32(p.first + (start+i)%p.size)
		if !ok(a) {
			continue
		}
		l := p.byAddr[u32(a)]
		if l == nil {
			return a, nil
		}
		if oldest == nil || l.Expiry.Before(oldest.Expiry) {
			oldest = l
		}
	}
	if oldest != nil {
		return oldest.Addr, nil
	}
	return netip.Addr{}, ErrExhausted
}

// Hold records a offered to key until now+d, so a second client's DISCOVER
// meanwhile is not offered the same address.
func (p *Pool) Hold(key string, mac [6]byte, a netip.Addr, now time.Time, d time.Duration) error {
	if l := p.byKey[key]; l != nil && l.Bound && l.Addr == a && now.Before(l.Expiry) {
		return nil // already bound: an offer must not shorten the lease
	}
	return p.set(key, mac, a, now.Add(d), false, now)
}

// Bind acknowledges a to key for the pool's lease time and returns the lease.
func (p *Pool) Bind(key string, mac [6]byte, a netip.Addr, now time.Time) (*Lease, error) {
	if err := p.set(key, mac, a, now.Add(p.lease), true, now); err != nil {
		return nil, err
	}
	return p.byKey[key], nil
}

func (p *Pool) set(key string, mac [6]byte, a netip.Addr, expiry time.Time, bound bool, now time.Time) error {
	if err := p.check(key, a, now); err != nil {
		return err
	}
	v := u32(a)
	if l := p.byKey[key]; l != nil && l.Addr != a {
		p.drop(l) // the client moved to another address: one lease each
	}
	if l := p.byAddr[v]; l != nil && l.Key != key {
		p.drop(l) // expired (check passed): the address is reused
	}
	l := p.byKey[key]
	if l == nil {
		l = &Lease{Key: key}
		p.byKey[key] = l
		p.byAddr[v] = l
	}
	l.MAC, l.Addr, l.Expiry, l.Bound = mac, a, expiry, bound
	return nil
}

func (p *Pool) drop(l *Lease) {
	delete(p.byKey, l.Key)
	if p.byAddr[u32(l.Addr)] == l {
		delete(p.byAddr, u32(l.Addr))
	}
}

// Release ends key's lease of a (DHCPRELEASE), so the address is free at
// once. The binding stays, expired: the client that released the address
// is offered it again when it returns, unless the pool ran out of
// never-leased addresses meanwhile.
func (p *Pool) Release(key string, a netip.Addr) bool {
	l := p.byKey[key]
	if l == nil || l.Addr != a {
		return false
	}
	l.Expiry, l.Bound = time.Time{}, false
	return true
}

// Block quarantines a until the given time: a client declined it (another
// host has it) or a host answered an ARP probe for it. Any lease on it ends.
func (p *Pool) Block(a netip.Addr, until time.Time) {
	if !p.Contains(a) {
		return
	}
	v := u32(a)
	if l := p.byAddr[v]; l != nil {
		p.drop(l)
	}
	p.blocked[v] = until
}

// Blocked counts quarantined addresses.
func (p *Pool) Blocked(now time.Time) int {
	n := 0
	for _, until := range p.blocked {
		if now.Before(until) {
			n++
		}
	}
	return n
}
