// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Program is a compiled access list: the rules in order, the default action, and a
// drop counter per rule. It is immutable once compiled except for the counters and
// the cache of per-user matchers, and safe for concurrent use.
type Program struct {
	rules []Rule
	def   Action

	// drops[i] counts frames rule i dropped; drops[len(rules)] those the default
	// dropped. One cache line each, so sessions on different cores dropping by
	// different rules do not contend.
	drops []counter

	// everyone is the matcher for users no rule names; nil when it would pass
	// everything.
	everyone *Matcher
	// named holds the users some rule names; their matchers are built on first
	// login and shared by that user's sessions.
	named map[string]bool
	mu    sync.Mutex
	byUsr map[string]*Matcher
}

type counter struct {
	n atomic.Uint64
	_ [56]byte
}

// Compile checks rules and compiles them with def as the action for frames no rule
// matches. An error names the rule (position and name) and how to fix it. It
// refuses what the VirtualHub CRD's validation refuses, so for a stored object an
// error means the object was written past that validation (an older CRD).
func Compile(rules []Rule, def Action) (*Program, error) {
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("access list has %d rules; at most %d are allowed: merge rules with wider prefixes or port ranges", len(rules), MaxRules)
	}
	if def != Pass && def != Drop {
		return nil, fmt.Errorf("default action %v: use Pass or Drop", def)
	}
	p := &Program{
		rules: make([]Rule, len(rules)),
		def:   def,
		drops: make([]counter, len(rules)+1),
		named: map[string]bool{},
		byUsr: map[string]*Matcher{},
	}
	names := make(map[string]int, len(rules))
	for i, r := range rules {
		if err := check(&r); err != nil {
			return nil, fmt.Errorf("access rule %d (%q): %w", i, r.Name, err)
		}
		if j, dup := names[r.Name]; dup {
			return nil, fmt.Errorf("access rule %d (%q): rule %d has the same name; give each rule its own name", i, r.Name, j)
		}
		names[r.Name] = i
		r.Users = append([]string(nil), r.Users...)
		p.rules[i] = r
		for _, u := range r.Users {
			p.named[u] = true
		}
	}
	p.everyone = p.build("", false)
	return p, nil
}

func check(r *Rule) error {
	if r.Name == "" {
		return fmt.Errorf("the rule has no name; name it, the name identifies it in drop counters")
	}
	if r.Action != Pass && r.Action != Drop {
		return fmt.Errorf("action %v: use Pass or Drop", r.Action)
	}
	if r.EtherType != 0 && r.EtherType < 0x0600 {
		return fmt.Errorf("etherType %#04x is an 802.3 length, not an EtherType: use a value from 0x0600", r.EtherType)
	}
	if r.VLAN != nil && *r.VLAN > 4094 {
		return fmt.Errorf("vlan %d: VLAN IDs run from 0 (untagged) to 4094", *r.VLAN)
	}
	for _, c := range []struct {
		field string
		p     netip.Prefix
	}{{"srcCIDR", r.SrcCIDR}, {"dstCIDR", r.DstCIDR}} {
		if c.p == (netip.Prefix{}) {
			continue
		}
		if !c.p.IsValid() {
			return fmt.Errorf("%s %v is not an IPv4 or IPv6 prefix; write one such as 10.1.0.0/16 or fd00::/8", c.field, c.p)
		}
		if m := c.p.Masked(); m != c.p {
			return fmt.Errorf("%s %v has address bits set after the prefix length; write %v", c.field, c.p, m)
		}
	}
	if r.SrcCIDR.IsValid() && r.DstCIDR.IsValid() && r.SrcCIDR.Addr().Is4() != r.DstCIDR.Addr().Is4() {
		return fmt.Errorf("srcCIDR %v and dstCIDR %v are of different families, so no packet matches both; write two rules", r.SrcCIDR, r.DstCIDR)
	}
	for _, c := range []struct {
		field string
		p     *PortRange
	}{{"srcPorts", r.SrcPorts}, {"dstPorts", r.DstPorts}} {
		if c.p == nil {
			continue
		}
		if r.Protocol == nil || (*r.Protocol != ProtoTCP && *r.Protocol != ProtoUDP) {
			return fmt.Errorf("%s needs protocol tcp or udp: only TCP and UDP have ports", c.field)
		}
		if c.p.Lo > c.p.Hi {
			return fmt.Errorf("%s %d-%d runs backwards; write %d-%d", c.field, c.p.Lo, c.p.Hi, c.p.Hi, c.p.Lo)
		}
	}
	return nil
}

// ForUser returns the matcher for a session of user, to be taken once at login:
// rules naming other users are left out of it, so matching never compares names.
// It returns nil when every frame of the session would pass (no Drop rule applies
// and the default is Pass); callers skip a nil matcher, so an empty list costs nothing
// per frame. A nil Program returns nil.
func (p *Program) ForUser(user string) *Matcher {
	if p == nil {
		return nil
	}
	if !p.named[user] {
		return p.everyone
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.byUsr[user]
	if !ok {
		m = p.build(user, true)
		p.byUsr[user] = m
	}
	return m
}

// Len is the number of rules.
func (p *Program) Len() int { return len(p.rules) }

// Name is rule i's name, for metric labels; "" for the default (-1).
func (p *Program) Name(i int) string {
	if i < 0 {
		return ""
	}
	return p.rules[i].Name
}

// Default is the action for frames no rule matches.
func (p *Program) Default() Action { return p.def }

// Dropped is the number of frames rule i dropped since the program was compiled;
// i = -1 counts the default action's drops. A recompiled list starts from zero.
func (p *Program) Dropped(i int) uint64 {
	if i < 0 {
		i = len(p.rules)
	}
	return p.drops[i].n.Load()
}

// build compiles the rules that apply to a session of user (all rules without
// users when named is false).
func (p *Program) build(user string, named bool) *Matcher {
	var idx []int
	for i := range p.rules {
		if applies(&p.rules[i], user, named) {
			idx = append(idx, i)
		}
	}
	if p.def == Pass && !anyDrop(p.rules, idx) {
		return nil
	}
	return newMatcher(p, idx)
}

func anyDrop(rules []Rule, idx []int) bool {
	for _, i := range idx {
		if rules[i].Action == Drop {
			return true
		}
	}
	return false
}

func applies(r *Rule, user string, named bool) bool {
	if len(r.Users) == 0 {
		return true
	}
	if !named {
		return false
	}
	for _, u := range r.Users {
		if u == user {
			return true
		}
	}
	return false
}
