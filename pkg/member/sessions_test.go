// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/dhcp"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// changes records Options.OnSessions calls.
type changes struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *changes) note(hub string) {
	c.mu.Lock()
	c.n[hub]++
	c.mu.Unlock()
}

func (c *changes) get(hub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[hub]
}

func sessionOf(list []SessionInfo, user string) *SessionInfo {
	for i := range list {
		if list[i].User == user {
			return &list[i]
		}
	}
	return nil
}

// Sessions lists each session of a hub with its user, kind, source, start,
// counters and DHCP address; Disconnect ends exactly the named one with
// Shutdown "disconnected by an administrator", and its user, still in the
// hub's users, logs in again with the ticket of the ended session.
func TestSessionsListAndDisconnect(t *testing.T) {
	ch := &changes{n: map[string]int{}}
	before := time.Now()
	m := startMemberOpts(t, func(c *Config) { c.Hubs[0].DHCP = testDHCP }, Options{OnSessions: ch.note})
	alice := m.connect(t, pw("alpha", "alice", "alice-pw"))
	bob := m.connect(t, pw("alpha", "bob", "bob-pw"))
	eventually(t, 5*time.Second, "OnSessions called for both logins", func() bool { return ch.get("alpha") >= 2 })

	// alice leases an address; the frames count both ways.
	me := mac(7)
	alice.send(t, dhcp.ClientFrame(nil, &dhcp.Message{Op: dhcp.OpRequest, XID: 1, CHAddr: me, Type: dhcp.Discover}, netip.Addr{}, netip.Addr{}, [6]byte{}))
	off := alice.nextReply(t, me, 1)
	alice.send(t, dhcp.ClientFrame(nil, &dhcp.Message{Op: dhcp.OpRequest, XID: 2, CHAddr: me, Type: dhcp.Request, ServerID: off.ServerID, RequestedIP: off.YIAddr}, netip.Addr{}, netip.Addr{}, [6]byte{}))
	if ack := alice.nextReply(t, me, 2); ack.Type != dhcp.Ack {
		t.Fatalf("ack %+v", ack)
	}
	f := eth(mac(8), mac(9), "to alice's station")
	bob.send(t, f)

	var list []SessionInfo
	eventually(t, 5*time.Second, "both sessions listed with counters", func() bool {
		var ok bool
		list, ok = m.srv.Sessions("alpha")
		a, b := sessionOf(list, "alice"), sessionOf(list, "bob")
		return ok && len(list) == 2 && a != nil && b != nil && a.RxFrames >= 2 && b.RxFrames >= 1 && a.DHCPAddress.IsValid()
	})
	a, b := sessionOf(list, "alice"), sessionOf(list, "bob")
	if a.ID != SessionID(alice.res.SessionID) || b.ID != SessionID(bob.res.SessionID) || len(a.ID) != 32 {
		t.Errorf("ids %s %s, want the login results' %x %x", a.ID, b.ID, alice.res.SessionID, bob.res.SessionID)
	}
	if a.Kind != sessionkind.Client || a.Hub != "alpha" || !strings.HasPrefix(a.Source, "127.0.0.1:") {
		t.Errorf("alice's session %+v", a)
	}
	if a.Since.Before(before) || a.Since.After(time.Now()) || b.Since.Before(a.Since) {
		t.Errorf("since: alice %v bob %v, test began %v", a.Since, b.Since, before)
	}
	if a.DHCPAddress != off.YIAddr || b.DHCPAddress.IsValid() {
		t.Errorf("dhcp: alice %v (leased %v), bob %v (none)", a.DHCPAddress, off.YIAddr, b.DHCPAddress)
	}
	if a.TxFrames < 2 || a.TxBytes == 0 || a.RxBytes == 0 { // two DHCP replies, plus floods
		t.Errorf("alice's counters %+v", a)
	}
	if _, ok := m.srv.Sessions("nope"); ok {
		t.Error("Sessions of a hub not served: ok")
	}

	done := m.srv.Disconnect("alpha", map[string]bool{a.ID: true, "00000000000000000000000000000000": true})
	if len(done) != 1 || done[0] != a.ID {
		t.Fatalf("Disconnect ended %v, want only %s", done, a.ID)
	}
	err := alice.expectEnd(t, 5*time.Second)
	if se, ok := errors.AsType[*protocol.ShutdownError](err); !ok || se.Reason != ReasonDisconnected {
		t.Fatalf("alice's session ended with %v, want Shutdown %q", err, ReasonDisconnected)
	}
	eventually(t, 5*time.Second, "alice's session gone from the list", func() bool {
		list, _ = m.srv.Sessions("alpha")
		return len(list) == 1 && list[0].User == "bob"
	})
	g := eth(broadcast, mac(9), "bob still here")
	bob.send(t, g)
	// alice is still a user: her client comes back with its ticket, as a new session.
	again := m.connect(t, protocol.LoginRequest{Hub: "alpha", User: "alice", Ticket: alice.res.Ticket, Kind: protocol.KindClient})
	if again.res.SessionID == alice.res.SessionID {
		t.Error("the reconnect kept the disconnected session's id")
	}
}

// Removing a user from a hub's users ends that user's sessions (Shutdown
// "user removed ..."), and changing its password ends them too (Shutdown
// "password changed ..."): both refuse the session's ticket, the old
// password stops working, the new one works, and other users stay.
func TestRemovedUserOrChangedPasswordEndsSessions(t *testing.T) {
	ch := &changes{n: map[string]int{}}
	m := startMemberOpts(t, nil, Options{OnSessions: ch.note})
	alice := m.connect(t, pw("alpha", "alice", "alice-pw"))
	bob := m.connect(t, pw("alpha", "bob", "bob-pw"))
	carol := m.connect(t, pw("beta", "carol", "carol-pw"))
	carol2 := m.connect(t, pw("beta", "carol", "carol-pw"))

	cfg := baseConfig(t, m.dir)
	delete(cfg.Hubs[0].Users, "alice")
	cfg.Hubs[0].Users["bob"] = hashPW(t, "bob-new")
	if err := m.srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	err := alice.expectEnd(t, 5*time.Second)
	if se, ok := errors.AsType[*protocol.ShutdownError](err); !ok || se.Reason != ReasonUserRemoved {
		t.Fatalf("removed user's session ended with %v, want Shutdown %q", err, ReasonUserRemoved)
	}
	err = bob.expectEnd(t, 5*time.Second)
	if se, ok := errors.AsType[*protocol.ShutdownError](err); !ok || se.Reason != ReasonPasswordChanged {
		t.Fatalf("the session of a user whose password changed ended with %v, want Shutdown %q", err, ReasonPasswordChanged)
	}
	eventually(t, 5*time.Second, "nobody listed on alpha", func() bool {
		list, _ := m.srv.Sessions("alpha")
		return len(list) == 0
	})
	f := eth(broadcast, mac(3), "carol's sessions stay")
	carol.send(t, f)
	carol2.expect(t, f)
	for _, c := range []struct {
		who string
		req protocol.LoginRequest
	}{
		{"removed user's ticket", protocol.LoginRequest{Hub: "alpha", User: "alice", Ticket: alice.res.Ticket, Kind: protocol.KindClient}},
		{"removed user's password", pw("alpha", "alice", "alice-pw")},
		{"ticket from before the password change", protocol.LoginRequest{Hub: "alpha", User: "bob", Ticket: bob.res.Ticket, Kind: protocol.KindClient}},
		{"old password", pw("alpha", "bob", "bob-pw")},
	} {
		_, _, err := m.login(c.req)
		if le := loginErr(t, err); le.Code != protocol.BadCredentials {
			t.Errorf("%s: %v, want BadCredentials", c.who, err)
		} else if c.who == "ticket from before the password change" && !strings.Contains(le.Message, "new password") {
			t.Errorf("%s: %q, want it to say to log in with the new password", c.who, le.Message)
		}
	}
	m.connect(t, pw("alpha", "bob", "bob-new"))
}
