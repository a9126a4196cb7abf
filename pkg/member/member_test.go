// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

func TestSessionsOnOneHubExchangeFrames(t *testing.T) {
	m := startMember(t, nil)
	a := m.connect(t, pw("alpha", "alice", "alice-pw"))
	b := m.connect(t, pw("alpha", "bob", "bob-pw"))
	c := m.connect(t, pw("alpha", "alice", "alice-pw")) // a third station, to see what it is spared

	// Broadcast floods to every other session; the hub learns the sources.
	fa := eth(broadcast, mac(1), "hello from a")
	a.send(t, fa)
	b.expect(t, fa)
	c.expect(t, fa)
	fb := eth(broadcast, mac(2), "hello from b")
	b.send(t, fb)
	a.expect(t, fb)
	c.expect(t, fb)

	// Unicast to learned MACs goes to their session only, both ways.
	ab := eth(mac(2), mac(1), "a to b")
	a.send(t, ab)
	b.expect(t, ab)
	ba := eth(mac(1), mac(2), "b to a")
	b.send(t, ba)
	a.expect(t, ba)
	// c's next frame must be this broadcast, not either unicast: Forward queued
	// the unicasts before b and a received them, so a leak would come first.
	z := eth(broadcast, mac(1), "after the unicasts")
	a.send(t, z)
	b.expect(t, z)
	c.expect(t, z)

	st := m.srv.Stats()
	if st.Sessions != 3 || st.Clients != 3 || st.Bridges != 0 {
		t.Errorf("stats: %d sessions (%d clients, %d bridges), want 3 clients", st.Sessions, st.Clients, st.Bridges)
	}
	if h := m.hubStats(t, "alpha"); h.Switch.FramesIn != 5 || h.Switch.MACs != 2 {
		t.Errorf("hub alpha: %d frames in, %d MACs; want 5 and 2", h.Switch.FramesIn, h.Switch.MACs)
	}
}

func TestHubsNeverSeeEachOthersFrames(t *testing.T) {
	m := startMember(t, nil)
	a1 := m.connect(t, pw("alpha", "alice", "alice-pw"))
	a2 := m.connect(t, pw("alpha", "bob", "bob-pw"))
	b1 := m.connect(t, pw("beta", "carol", "carol-pw"))
	b2 := m.connect(t, pw("beta", "carol", "carol-pw"))

	x := eth(broadcast, mac(1), "alpha broadcast")
	a1.send(t, x)
	// The same MAC on the other hub is another station: learning must not mix.
	u := eth(mac(9), mac(1), "alpha unknown unicast")
	a1.send(t, u)
	a2.expect(t, x)
	a2.expect(t, u)
	// Both alpha frames were forwarded (to every queue they would ever reach)
	// before a2 got the second, so beta's sessions must see beta's frame first.
	y := eth(broadcast, mac(1), "beta broadcast")
	b1.send(t, y)
	b2.expect(t, y)
	y2 := eth(broadcast, mac(3), "beta back")
	b2.send(t, y2)
	b1.expect(t, y2)

	if h := m.hubStats(t, "beta"); h.Switch.FramesIn != 2 || h.Switch.FramesOut != 2 {
		t.Errorf("hub beta: %d in, %d out; want 2 and 2 (its own frames only)", h.Switch.FramesIn, h.Switch.FramesOut)
	}
}

func TestLoginRefusals(t *testing.T) {
	m := startMember(t, func(c *Config) {
		c.Hubs[1].MaxSessions = 1
		c.Licenses = &Licenses{Client: 2, Bridge: 1}
	})
	// Fill: beta's one slot (a client license), one more client, one bridge.
	m.connect(t, pw("beta", "carol", "carol-pw"))
	m.connect(t, pw("alpha", "alice", "alice-pw"))
	br := pw("alpha", "bob", "bob-pw")
	br.Kind = protocol.KindBridge
	m.connect(t, br)

	bridge2 := br
	bridge2.User = "alice"
	bridge2.Password = "alice-pw"
	cases := []struct {
		name string
		req  protocol.LoginRequest
		code protocol.Code
		msg  []string // substrings the message must hold
	}{
		{"unknown hub", pw("gamma", "alice", "alice-pw"), protocol.UnknownHub,
			[]string{`hub "gamma" does not exist on member member-test`, "check the hub name", "ask your administrator"}},
		{"bad password", pw("alpha", "alice", "wrong"), protocol.BadCredentials,
			[]string{`wrong user name or password for hub "alpha"`}},
		{"unknown user", pw("alpha", "mallory", "alice-pw"), protocol.BadCredentials,
			[]string{`wrong user name or password for hub "alpha"`}},
		{"password for another hub's user", pw("alpha", "carol", "carol-pw"), protocol.BadCredentials,
			[]string{`wrong user name or password for hub "alpha"`}},
		{"hub full", pw("beta", "carol", "carol-pw"), protocol.HubFull,
			[]string{`hub "beta" is full: 1 of 1 sessions`, "maxSessions"}},
		{"client license exhausted", pw("alpha", "alice", "alice-pw"), protocol.LicenseExhausted,
			[]string{"license exhausted: no client connection license free on member member-test (2 of 2 in use)"}},
		{"bridge license exhausted", bridge2, protocol.LicenseExhausted,
			[]string{"license exhausted: no bridge connection license free on member member-test (1 of 1 in use)"}},
		{"version unsupported", protocol.LoginRequest{Hub: "alpha", User: "alice", Password: "alice-pw", Kind: protocol.KindClient, Version: 99, MinVersion: 99},
			protocol.VersionUnsupported, nil},
		{"no credential", protocol.LoginRequest{Hub: "alpha", Kind: protocol.KindClient}, protocol.BadCredentials,
			[]string{"log in with a password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, res, err := m.login(tc.req)
			le := loginErr(t, err)
			if le.Code != tc.code {
				t.Fatalf("code %v (%q), want %v", le.Code, le.Message, tc.code)
			}
			for _, s := range tc.msg {
				if !strings.Contains(le.Message, s) {
					t.Errorf("message %q does not say %q", le.Message, s)
				}
			}
			if tc.code == protocol.VersionUnsupported && (res.ServerMinVersion != protocol.MinVersion || res.ServerMaxVersion != protocol.Version) {
				t.Errorf("version refusal offers %d..%d, want %d..%d", res.ServerMinVersion, res.ServerMaxVersion, protocol.MinVersion, protocol.Version)
			}
		})
	}
	// Refusals took nothing: the counts are the three admitted sessions.
	st := m.srv.Stats()
	if st.Licenses.ClientInUse != 2 || st.Licenses.BridgeInUse != 1 || st.Sessions != 3 {
		t.Errorf("after refusals: licenses %+v, sessions %d; want 2 client, 1 bridge, 3 sessions", st.Licenses, st.Sessions)
	}
}

func TestLicenseAndSlotFreedWhenSessionEnds(t *testing.T) {
	m := startMember(t, func(c *Config) { c.Licenses = &Licenses{Client: 1, Bridge: 0} })
	a := m.connect(t, pw("alpha", "alice", "alice-pw"))
	if _, _, err := m.login(pw("alpha", "bob", "bob-pw")); loginErr(t, err).Code != protocol.LicenseExhausted {
		t.Fatalf("second client admitted beyond an allocation of 1: %v", err)
	}
	a.conn.Close()
	eventually(t, 5*time.Second, "license not released after the session closed", func() bool {
		return m.srv.Stats().Licenses.ClientInUse == 0
	})
	m.connect(t, pw("alpha", "bob", "bob-pw"))
}

func TestTicketResumesWithoutPassword(t *testing.T) {
	m := startMember(t, nil)
	first := m.connect(t, pw("alpha", "alice", "alice-pw"))
	ticket := first.res.Ticket
	if len(ticket) == 0 || !first.res.TicketExpiry.After(time.Now()) {
		t.Fatalf("login result has no usable ticket: %d bytes, expiry %v", len(ticket), first.res.TicketExpiry)
	}
	resume := protocol.LoginRequest{Hub: "alpha", User: "alice", Ticket: ticket, Kind: protocol.KindClient}
	second := m.connect(t, resume)
	if len(second.res.Ticket) == 0 || second.res.SessionID == first.res.SessionID {
		t.Errorf("resumed login did not get a new session and ticket")
	}
	// The resumed session forwards like any other.
	f := eth(broadcast, mac(7), "resumed")
	second.send(t, f)
	first.expect(t, f)

	for _, tc := range []struct {
		name string
		edit func(*protocol.LoginRequest)
		want string
	}{
		{"other hub", func(r *protocol.LoginRequest) { r.Hub = "beta" }, `hub "alpha", not "beta"`},
		{"other user", func(r *protocol.LoginRequest) { r.User = "bob" }, `user "alice", not "bob"`},
		{"other kind", func(r *protocol.LoginRequest) { r.Kind = protocol.KindBridge }, "session kind 1, not 2"},
		{"tampered", func(r *protocol.LoginRequest) {
			r.Ticket = append([]byte(nil), ticket...)
			r.Ticket[len(r.Ticket)-1] ^= 1
		}, "log in with your password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := resume
			tc.edit(&req)
			_, _, err := m.login(req)
			le := loginErr(t, err)
			if le.Code != protocol.BadCredentials || !strings.Contains(le.Message, tc.want) {
				t.Errorf("got %v %q, want BadCredentials saying %q", le.Code, le.Message, tc.want)
			}
		})
	}
}

func TestSilentSessionIsReaped(t *testing.T) {
	m := startMember(t, func(c *Config) {
		c.KeepaliveInterval = Duration(50 * time.Millisecond)
		c.DeadTimeout = Duration(300 * time.Millisecond)
	})
	// A client that logs in and then sends nothing, not even keepalives.
	conn, res, err := m.login(pw("alpha", "alice", "alice-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if res.DeadPeerTimeout != 300*time.Millisecond || res.KeepaliveInterval != 50*time.Millisecond {
		t.Fatalf("login result timers %v/%v, want the configured 50ms/300ms", res.KeepaliveInterval, res.DeadPeerTimeout)
	}
	eventually(t, 5*time.Second, "silent session still counted", func() bool { return m.srv.Stats().Sessions == 0 })
	// A live session with keepalives on the same member is not reaped meanwhile.
	live := m.connect(t, pw("alpha", "bob", "bob-pw"))
	quiet := m.connect(t, pw("alpha", "alice", "alice-pw"))
	deadline := time.Now().Add(time.Second) // over three dead timeouts
	for time.Now().Before(deadline) {
		f := eth(broadcast, mac(2), "still here")
		live.send(t, f)
		quiet.expect(t, f)
	}
	if n := m.srv.Stats().Sessions; n != 2 {
		t.Errorf("%d sessions after a second of keepalives, want 2", n)
	}
}
