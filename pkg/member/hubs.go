// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hubfleet/hubfleet/pkg/acl"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/ratelimit"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// hubState is one served hub: its switch, its current configuration and its
// sessions.
type hubState struct {
	name string
	sw   *hub.Hub

	mu       sync.Mutex
	cfg      *HubConfig   // replaced by Apply; read under mu at login
	acl      *acl.Program // cfg's access list, compiled; read under mu
	sessions map[*session]struct{}
	count    [sessionkind.N]int // sessions admitted (reserved or running) per kind
	// running are the sessions admitted and attached per kind: what Stats,
	// and so the Lease load, reports. count also holds logins still being
	// decided (waiting for a license loan, say), which a report must not
	// count: summed over members they read more sessions than the license
	// (seen end to end).
	running [sessionkind.N]int
	perUser map[string]int // sessions admitted per user (userlimits.go)
	// maxPerUser is cfg's userLimits.maxSessionsPerUser (0: none); rate its
	// sessionRate, read by the sessions' reader and writer per frame (nil:
	// none), replaced (never changed in place) by update. rateDrops counts
	// frames the egress shaper dropped.
	maxPerUser int
	rate       atomic.Pointer[ratelimit.Limit]
	rateDrops  atomic.Uint64
	removed    bool
	reason     string    // why it was removed, for sessions that arrive after
	dhcp       *dhcpPort // the hub's DHCP server; nil without cfg.DHCP or a HoldDHCP
	now        func() time.Time
	log        *slog.Logger
	onSessions func(hub string) // Options.OnSessions (sessions.go)
}

func newHubState(c *HubConfig, now func() time.Time, log *slog.Logger, onSessions func(hub string)) *hubState {
	// Validate compiled the list already; a failure here cannot happen, and
	// would leave the hub without a filter only for a config Validate refused.
	prog, _ := c.accessList()
	hs := &hubState{
		acl:  prog,
		name: c.Name,
		sw: hub.New(c.Name, hub.Options{
			MACAgeing: time.Duration(c.MACAgeingSeconds) * time.Second,
			MaxMACs:   c.MaxMACs,
			// Sessions negotiate at most this (maxFrame in login.go), so no frame a
			// session may send is dropped as oversize.
			MaxFrame: maxFrame,
			Now:      now,
		}),
		cfg:        c,
		sessions:   map[*session]struct{}{},
		perUser:    map[string]int{},
		now:        now,
		log:        log,
		onSessions: onSessions,
	}
	hs.setUserLimits(c)
	hs.setDHCP(c, log)
	return hs
}

// setDHCP starts, restarts or stops the hub's DHCP server to match c. A
// changed pool gets a new server with an empty table: the clients' renewals
// teach it their leases, as after a move (pkg/dhcp).
func (hs *hubState) setDHCP(c *HubConfig, log *slog.Logger) {
	hs.mu.Lock()
	old := hs.dhcp
	if old != nil && (old.held || reflect.DeepEqual(old.spec, c.DHCP)) {
		// A held server (HoldDHCP) is its holder's to stop.
		hs.mu.Unlock()
		return
	}
	hs.dhcp = nil
	hs.mu.Unlock()
	if old != nil {
		old.stop()
	}
	dc, _ := c.dhcpConfig() // validated with the config
	if dc == nil {
		return
	}
	d := startDHCP(hs.sw, dc, hs.now, log, hs.sessionsChanged)
	d.spec = c.DHCP
	hs.mu.Lock()
	hs.dhcp = d
	hs.mu.Unlock()
	log.Info("dhcp server started", "hub", c.Name, "server", dc.ServerIP(), "range_end", dc.End, "prefix", dc.Prefix)
}

// update installs a new configuration for later logins.
func (hs *hubState) update(c *HubConfig, log *slog.Logger) {
	prog, _ := c.accessList() // validated with the config
	hs.mu.Lock()
	old := hs.cfg
	hs.cfg = c
	hs.acl = prog
	hs.setUserLimits(c)
	// Sessions already running get the new list at once: a rule added to stop
	// a session's traffic must not wait for it to reconnect.
	for se := range hs.sessions {
		se.port.SetFilter(filterFor(prog, se.user))
	}
	hs.endStaleUsers(c) // sessions.go
	hs.mu.Unlock()
	hs.setDHCP(c, log)
	if old.MACAgeingSeconds != c.MACAgeingSeconds || old.MaxMACs != c.MaxMACs {
		// The switch's table parameters are fixed when it is built; rebuilding it
		// would drop every session of the hub, which a tuning change is not worth.
		log.Warn("macAgeingSeconds and maxMACs changes take effect when the member restarts", "hub", c.Name)
	}
	if old.Type != c.Type {
		log.Warn("hub type changed; on a member both types switch alike, the operator places them differently", "hub", c.Name, "old", old.Type, "new", c.Type)
	}
}

// userHash returns the user's PHC hash.
func (hs *hubState) userHash(user string) (phc string, ok bool) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	phc, ok = hs.cfg.Users[user]
	return phc, ok
}

// setUserLimits takes c's userLimits; the caller holds mu or owns hs. A
// rate equal to the current one keeps its pointer, so running sessions keep
// their buckets' state.
func (hs *hubState) setUserLimits(c *HubConfig) {
	maxPerUser, rate, _ := UserLimitSettings(c.UserLimits) // validated with the config
	hs.maxPerUser = maxPerUser
	if old := hs.rate.Load(); rate == nil || old == nil || *old != *rate {
		hs.rate.Store(rate)
	}
}

// reserve's refusals.
var (
	errHubGone   = errors.New("hub removed")
	errHubFull   = errors.New("hub full")
	errUserLimit = errors.New("user session limit")
)

// reserve counts a session of kind k of user against maxSessions and
// maxSessionsPerUser; on errHubFull or errUserLimit it returns the limit
// reached.
func (hs *hubState) reserve(k sessionkind.Kind, user string) (limit int, err error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.removed {
		return 0, errHubGone
	}
	limit = hs.cfg.MaxSessions
	if limit > 0 && hs.count[sessionkind.Client]+hs.count[sessionkind.Bridge] >= limit {
		return limit, errHubFull
	}
	if hs.maxPerUser > 0 && hs.perUser[user] >= hs.maxPerUser {
		return hs.maxPerUser, errUserLimit
	}
	hs.count[k]++
	hs.perUser[user]++
	return limit, nil
}

func (hs *hubState) unreserve(k sessionkind.Kind, user string) {
	hs.mu.Lock()
	hs.count[k]--
	hs.unreserveUser(user)
	hs.mu.Unlock()
}

// drop undoes attach and reserve for a session that never ran (its OK was
// not sent, or the hub went before it registered).
func (hs *hubState) drop(se *session) {
	hs.mu.Lock()
	hs.running[se.kind]--
	hs.count[se.kind]--
	hs.unreserveUser(se.user)
	hs.mu.Unlock()
}

// unreserveUser drops one session of user; the caller holds mu.
func (hs *hubState) unreserveUser(user string) {
	if hs.perUser[user] <= 1 {
		delete(hs.perUser, user)
		return
	}
	hs.perUser[user]--
}

// attach gives an admitted session its switch port; false if the hub was
// removed meanwhile.
func (hs *hubState) attach(se *session) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.removed {
		return false
	}
	kind := hub.PortSession
	if se.kind == sessionkind.Bridge {
		kind = hub.PortBridge
	}
	se.port = hs.sw.Attach(kind, se.label)
	hs.running[se.kind]++
	se.port.SetFilter(filterFor(hs.acl, se.user))
	return true
}

// filterFor is the session's access list as the switch takes it: nil (no
// per-frame cost) when no rule can drop the user's frames.
func filterFor(p *acl.Program, user string) hub.Filter {
	if m := p.ForUser(user); m != nil {
		return m
	}
	return nil
}

// register lists a session whose client heard OK, so remove and forceClose reach
// it. If the hub was removed meanwhile (its port is then closed already) it
// returns the removal's reason and false.
func (hs *hubState) register(se *session) (string, bool) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.removed {
		return hs.reason, false
	}
	if reason := staleReason(hs.cfg, se); reason != "" {
		// Removed, or its password changed, while it logged in:
		// endStaleUsers did not see it.
		return reason, false
	}
	hs.sessions[se] = struct{}{}
	// The list may have changed since attach; update only reaches registered
	// sessions, so the latest is applied here, under the same lock.
	se.port.SetFilter(filterFor(hs.acl, se.user))
	return "", true
}

func (hs *hubState) deregister(se *session) {
	hs.mu.Lock()
	delete(hs.sessions, se)
	hs.running[se.kind]--
	hs.count[se.kind]--
	hs.unreserveUser(se.user)
	hs.mu.Unlock()
}

// remove refuses later logins, sends every session Shutdown with reason, waits
// for the messages to be written and closes the switch. It returns the number of
// sessions shut down.
func (hs *hubState) remove(reason string) int {
	hs.mu.Lock()
	if !hs.removed {
		hs.removed, hs.reason = true, reason
	}
	sessions := make([]*session, 0, len(hs.sessions))
	for se := range hs.sessions {
		sessions = append(sessions, se)
	}
	hs.mu.Unlock()
	var wg sync.WaitGroup
	for _, se := range sessions {
		wg.Go(func() { se.shutdown(reason) })
	}
	wg.Wait()
	hs.mu.Lock()
	d := hs.dhcp
	hs.dhcp = nil
	hs.mu.Unlock()
	if d != nil {
		d.stop()
	}
	hs.sw.Close()
	return len(sessions)
}

// forceClose closes every session without waiting for anything.
func (hs *hubState) forceClose() {
	hs.mu.Lock()
	sessions := make([]*session, 0, len(hs.sessions))
	for se := range hs.sessions {
		sessions = append(sessions, se)
	}
	hs.mu.Unlock()
	for _, se := range sessions {
		se.conn.Close()
	}
}

// isTemporary reports accept errors a listener survives.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

// ruleDrops is one access-list rule's drop count.
type ruleDrops struct {
	rule string
	n    uint64
}

// aclDrops returns, per hub with an access list, what each rule (and the
// default action, as "(default)") dropped. The counters live in the
// compiled list, so reading them costs the hot path nothing.
func (s *Server) aclDrops() map[string][]ruleDrops {
	s.mu.Lock()
	progs := map[string]*acl.Program{}
	for name, hs := range s.hubs {
		hs.mu.Lock()
		// A hub without a list has a program of no rules passing all.
		if p := hs.acl; p != nil && (p.Len() > 0 || p.Default() != acl.Pass) {
			progs[name] = p
		}
		hs.mu.Unlock()
	}
	s.mu.Unlock()
	out := make(map[string][]ruleDrops, len(progs))
	for name, p := range progs {
		rs := make([]ruleDrops, 0, p.Len()+1)
		for i := range p.Len() {
			rs = append(rs, ruleDrops{rule: p.Name(i), n: p.Dropped(i)})
		}
		out[name] = append(rs, ruleDrops{rule: "(default)", n: p.Dropped(-1)})
	}
	return out
}
