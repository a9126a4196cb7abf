// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"encoding/hex"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// Session listing and disconnection by an administrator.
//
// Sessions lists what a member serves (cluster mode publishes it in the
// VirtualHub's status.sessionList); Disconnect ends sessions by id; a user
// removed from a hub's users, or whose password an administrator changed,
// loses its sessions at the next Apply, and its resumption tickets stop
// working (they name the password they were issued under,
// auth.CredentialDigest), so the client must log in with the new password.
// Disconnecting a user whose entry and password stay lets it back at once
// with its ticket; to keep a user out, remove it or change its password
// (docs/sessions.md).

// Shutdown reasons of this file, as clients see them.
const (
	ReasonDisconnected    = "disconnected by an administrator"
	ReasonUserRemoved     = "user removed from the hub's users by an administrator"
	ReasonPasswordChanged = "password changed by an administrator: log in with the new password"
)

// SessionInfo is one session a member serves, as listed to administrators.
type SessionInfo struct {
	ID     string // 32 hex digits
	Hub    string
	User   string
	Kind   sessionkind.Kind
	Source string // the client's address; "<client> via <entry>" when relayed
	Since  time.Time
	// Rx counts what the client sent into the hub, Tx what the hub sent to
	// it (the session's switch port, so UDP-carried frames count too).
	RxBytes, RxFrames, TxBytes, TxFrames uint64
	// DHCPAddress is the bound lease of a station behind the session, if
	// the hub runs DHCP and one holds a lease.
	DHCPAddress netip.Addr
}

// SessionID formats a session id as listed.
func SessionID(id [16]byte) string { return hex.EncodeToString(id[:]) }

// Sessions lists the sessions of hub served here, oldest first (then by
// id); ok is false when this member does not serve hub.
func (s *Server) Sessions(hub string) (out []SessionInfo, ok bool) {
	s.mu.Lock()
	hs := s.hubs[hub]
	s.mu.Unlock()
	if hs == nil {
		return nil, false
	}
	hs.mu.Lock()
	list := make([]*session, 0, len(hs.sessions))
	for se := range hs.sessions {
		list = append(list, se)
	}
	d := hs.dhcp
	hs.mu.Unlock()
	var leases map[[6]byte]netip.Addr
	if d != nil {
		leases = d.srv.BoundByMAC(s.now())
	}
	out = make([]SessionInfo, 0, len(list))
	var macs [][6]byte
	for _, se := range list {
		st := se.port.Stats()
		in := SessionInfo{
			ID: SessionID(se.id), Hub: hub, User: se.user, Kind: se.kind, Source: se.remote, Since: se.since,
			RxBytes: st.BytesIn, RxFrames: st.FramesIn, TxBytes: st.BytesOut, TxFrames: st.FramesOut,
		}
		if len(leases) > 0 {
			macs = se.port.MACs(macs[:0])
			sort.Slice(macs, func(i, j int) bool { return string(macs[i][:]) < string(macs[j][:]) })
			for _, m := range macs {
				if a, ok := leases[m]; ok {
					in.DHCPAddress = a
					break
				}
			}
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].ID < out[j].ID
	})
	return out, true
}

// Disconnect sends Shutdown with ReasonDisconnected to the sessions of hub
// whose ids are in ids and returns the ids it ended. It returns once the
// messages are written (or the connections closed); the sessions then end
// and leave Sessions.
func (s *Server) Disconnect(hub string, ids map[string]bool) []string {
	s.mu.Lock()
	hs := s.hubs[hub]
	s.mu.Unlock()
	if hs == nil || len(ids) == 0 {
		return nil
	}
	var hit []*session
	hs.mu.Lock()
	for se := range hs.sessions {
		if ids[SessionID(se.id)] {
			hit = append(hit, se)
		}
	}
	hs.mu.Unlock()
	done := make([]string, 0, len(hit))
	var wg sync.WaitGroup
	for _, se := range hit {
		s.log.Info("session disconnected by an administrator", "hub", hub, "user", se.user, "remote", se.remote, "session", SessionID(se.id))
		wg.Go(func() { se.shutdown(ReasonDisconnected) })
		done = append(done, SessionID(se.id))
	}
	wg.Wait()
	return done
}

// endStaleUsers sends Shutdown to the sessions whose user is no longer in
// c.Users or whose password changed since they logged in, in the background
// (a client that reads nothing can hold a write for the write timeout). The
// caller holds hs.mu.
func (hs *hubState) endStaleUsers(c *HubConfig) {
	type ending struct {
		se     *session
		reason string
	}
	var gone []ending
	for se := range hs.sessions {
		if reason := staleReason(c, se); reason != "" {
			gone = append(gone, ending{se, reason})
		}
	}
	if len(gone) == 0 {
		return
	}
	log := hs.log
	go func() {
		for _, g := range gone {
			if log != nil {
				log.Info("ending a session: "+g.reason, "hub", hs.name, "user", g.se.user, "remote", g.se.remote, "session", SessionID(g.se.id))
			}
			g.se.shutdown(g.reason)
		}
	}()
}

// staleReason is why se may no longer run under c, or "": its user is gone
// or its password changed (a SHA-256 of the stored hash: ~0.3 µs a session).
func staleReason(c *HubConfig, se *session) string {
	phc, ok := c.Users[se.user]
	if !ok {
		return ReasonUserRemoved
	}
	if auth.CredentialDigest(phc) != se.cred {
		return ReasonPasswordChanged
	}
	return ""
}

// sessionsChanged tells Options.OnSessions that hub's session set changed.
func (hs *hubState) sessionsChanged() {
	if hs.onSessions != nil {
		hs.onSessions(hs.name)
	}
}
