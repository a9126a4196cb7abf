// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

func TestApplyAddsRemovesAndUpdatesHubs(t *testing.T) {
	m := startMember(t, nil)
	a1 := m.connect(t, pw("alpha", "alice", "alice-pw"))
	a2 := m.connect(t, pw("alpha", "bob", "bob-pw"))
	b1 := m.connect(t, pw("beta", "carol", "carol-pw"))

	// New config: alpha stays with alice's password changed, beta goes, gamma comes.
	cfg := baseConfig(t, m.dir)
	cfg.Hubs[0].Users["alice"] = hashPW(t, "alice-new")
	cfg.Hubs[1] = HubConfig{Name: "gamma", Type: HubDynamic, Users: map[string]string{"dave": hashPW(t, "dave-pw")}}
	if err := m.srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}

	// beta's session is told to go away, with the reason.
	err := b1.expectEnd(t, 5*time.Second)
	var se *protocol.ShutdownError
	if !errors.As(err, &se) || se.Reason != "hub removed" {
		t.Fatalf("session on the removed hub ended with %v, want Shutdown \"hub removed\"", err)
	}
	// alice's session ends (her password changed); bob's stays, and
	// alice with the new password reaches him both ways.
	err = a1.expectEnd(t, 5*time.Second)
	if !errors.As(err, &se) || se.Reason != ReasonPasswordChanged {
		t.Fatalf("the session of a user whose password changed ended with %v, want Shutdown %q", err, ReasonPasswordChanged)
	}
	a1 = m.connect(t, pw("alpha", "alice", "alice-new"))
	f := eth(broadcast, mac(1), "after apply")
	a1.send(t, f)
	a2.expect(t, f)
	g := eth(mac(1), mac(2), "unicast after apply")
	a2.send(t, g)
	a1.expect(t, g)

	// New logins see the new configuration.
	if _, _, err := m.login(pw("beta", "carol", "carol-pw")); loginErr(t, err).Code != protocol.UnknownHub {
		t.Errorf("login to the removed hub: %v, want UnknownHub", err)
	}
	m.connect(t, pw("gamma", "dave", "dave-pw"))
	if _, _, err := m.login(pw("alpha", "alice", "alice-pw")); loginErr(t, err).Code != protocol.BadCredentials {
		t.Errorf("old password after the change: %v, want BadCredentials", err)
	}
	m.connect(t, pw("alpha", "alice", "alice-new"))

	st := m.srv.Stats()
	names := []string{}
	for _, h := range st.Hubs {
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "alpha,gamma" || st.Sessions != 4 {
		t.Errorf("after apply: hubs %v, %d sessions; want alpha,gamma and 4", names, st.Sessions)
	}
}

func TestApplyRejectsBadConfigAndKeepsServing(t *testing.T) {
	m := startMember(t, nil)
	a := m.connect(t, pw("alpha", "alice", "alice-pw"))
	b := m.connect(t, pw("alpha", "bob", "bob-pw"))
	bad := baseConfig(t, m.dir)
	bad.Hubs[1].Type = "Dymanic"
	if err := m.srv.Apply(bad); err == nil || !strings.Contains(err.Error(), `type "Dymanic" is not a hub type`) {
		t.Fatalf("Apply of a bad hub type: %v", err)
	}
	f := eth(broadcast, mac(1), "still serving")
	a.send(t, f)
	b.expect(t, f)
	m.connect(t, pw("beta", "carol", "carol-pw"))
}

func TestShutdownTellsClientsToReconnect(t *testing.T) {
	m := startMember(t, nil)
	a := m.connect(t, pw("alpha", "alice", "alice-pw"))
	br := pw("beta", "carol", "carol-pw")
	br.Kind = protocol.KindBridge
	b := m.connect(t, br)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*client{a, b} {
		var se *protocol.ShutdownError
		if err := c.expectEnd(t, 5*time.Second); !errors.As(err, &se) || se.Reason != "member shutting down" {
			t.Errorf("session ended with %v, want Shutdown \"member shutting down\"", err)
		}
	}
	select {
	case err := <-m.served:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, _, err := m.login(pw("alpha", "alice", "alice-pw")); err == nil {
		t.Error("login accepted after Shutdown")
	}
	if st := m.srv.Stats(); st.Sessions != 0 || st.Licenses.ClientInUse+st.Licenses.BridgeInUse != 0 {
		t.Errorf("after Shutdown: %d sessions, licenses %+v in use", st.Sessions, st.Licenses)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	writePKI(t, dir)
	good := hashPW(t, "pw")
	load := func(t *testing.T, yaml string) (*Config, error) {
		p := filepath.Join(dir, "member.yaml")
		write(t, p, []byte(yaml))
		return LoadConfig(p, nil)
	}
	t.Run("valid, relative paths and defaults", func(t *testing.T) {
		write(t, filepath.Join(dir, "ticket.key"), []byte(strings.Repeat("ab", 32)+"\n"))
		cfg, err := load(t, `
certFile: tls.crt
keyFile: tls.key
ticketKeyFile: ticket.key
keepaliveInterval: 500ms
licenses: {client: 10, bridge: 2}
hubs:
- name: corp
  type: Static
  maxSessions: 50
  users: {alice: "`+good+`"}
`)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.CertFile != filepath.Join(dir, "tls.crt") || cfg.Listen != ":8443" ||
			cfg.KeepaliveInterval.D() != 500*time.Millisecond || cfg.DeadTimeout.D() != 3*time.Second ||
			cfg.Licenses.Client != 10 || cfg.Hubs[0].MaxSessions != 50 || cfg.Name == "" {
			t.Errorf("loaded %+v", cfg)
		}
		if _, err := New(cfg, Options{Logger: testLogger(t)}); err != nil {
			t.Errorf("New on a loaded config: %v", err)
		}
	})
	for _, tc := range []struct{ name, yaml, want string }{
		{"missing cert", "certFile: nope.crt\nkeyFile: tls.key\nhubs: []\n", "nope.crt"},
		{"no cert field", "keyFile: tls.key\nhubs: []\n", "certFile is empty"},
		{"bad hub type", "certFile: tls.crt\nkeyFile: tls.key\nhubs:\n- {name: corp, type: static, users: {}}\n",
			`hubs[0].type "static" is not a hub type: use "Static" or "Dynamic" (hub "corp")`},
		{"bad PHC string", "certFile: tls.crt\nkeyFile: tls.key\nhubs:\n- {name: corp, type: Static, users: {alice: plaintext}}\n",
			`hubs[0].users["alice"]: bad argon2id password hash`},
		{"duplicate hub", "certFile: tls.crt\nkeyFile: tls.key\nhubs:\n- {name: a, type: Static}\n- {name: a, type: Static}\n", "listed twice"},
		{"misspelt field", "certfile: tls.crt\nkeyFile: tls.key\nhubs: []\n", `unknown field "certfile"`},
		{"bad duration", "certFile: tls.crt\nkeyFile: tls.key\ndeadTimeout: soon\nhubs: []\n", `duration "soon"`},
		{"dead timeout too short", "certFile: tls.crt\nkeyFile: tls.key\nkeepaliveInterval: 2s\ndeadTimeout: 1s\nhubs: []\n", "deadTimeout 1s must be longer than keepaliveInterval 2s"},
		{"short ticket key", "certFile: tls.crt\nkeyFile: tls.key\nticketKeyFile: short.key\nhubs: []\n", "neither 32 raw bytes nor 64 hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(t, filepath.Join(dir, "short.key"), []byte("abc"))
			_, err := load(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(dir, "absent.yaml"), nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestTicketKeyFileSharedAcrossMembers(t *testing.T) {
	key := filepath.Join(t.TempDir(), "ticket.key")
	write(t, key, []byte(strings.Repeat("k", 32)))
	withKey := func(c *Config) { c.TicketKeyFile = key }
	m1 := startMember(t, withKey)
	first := m1.connect(t, pw("alpha", "alice", "alice-pw"))
	// Another member (another process in production) with the same key file
	// resumes the ticket; one with its own random key refuses it.
	m2 := startMember(t, withKey)
	m2.connect(t, protocol.LoginRequest{Hub: "alpha", User: "alice", Ticket: first.res.Ticket})
	m3 := startMember(t, nil)
	_, _, err := m3.login(protocol.LoginRequest{Hub: "alpha", User: "alice", Ticket: first.res.Ticket})
	if le := loginErr(t, err); le.Code != protocol.BadCredentials {
		t.Errorf("ticket from another key: %v", err)
	}
}
