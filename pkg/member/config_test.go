// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// An administrator with a config of dozens of hubs must be told which value is
// wrong and how to write it, whatever kind of mistake it is: a value the decoder
// cannot read (a bad duration, text where a number goes) as much as one Validate
// refuses.
func TestConfigRefusalNamesFieldPathAndFix(t *testing.T) {
	dir := t.TempDir()
	writePKI(t, dir)
	good := hashPW(t, "pw")
	const head = "certFile: tls.crt\nkeyFile: tls.key\n"
	hubs := func(third string) string {
		return "hubs:\n- {name: a, type: Static, users: {alice: \"" + good + "\"}}\n- {name: b, type: Dynamic}\n- {name: c, type: Static, " + third + "}\n"
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"word for a duration", head + "keepaliveInterval: fast\nhubs: []\n",
			[]string{`keepaliveInterval: duration "fast": write it like 1s, 500ms or 2m`}},
		{"English duration", head + "deadTimeout: \"3 seconds\"\nhubs: []\n",
			[]string{`deadTimeout: duration "3 seconds": write it like 1s, 500ms or 2m`}},
		{"both durations bad", head + "keepaliveInterval: fast\ndeadTimeout: slow\nhubs: []\n",
			[]string{`keepaliveInterval: duration "fast"`, `deadTimeout: duration "slow"`}},
		{"text for a number in the third hub", head + hubs("maxSessions: lots"),
			[]string{`hubs[2].maxSessions: "lots" is not a whole number: write digits, like 10`}},
		{"negative number in the third hub", head + hubs("maxSessions: -1"),
			[]string{`hubs[2].maxSessions -1 is negative: use 0 for unlimited (hub "c")`}},
		{"number for a password hash", head + hubs("users: {bob: 5}"),
			[]string{`hubs[2].users["bob"]: 5 is not text`}},
		{"users as a list", head + hubs("users: [bob]"),
			[]string{`hubs[2].users: ["bob"] is not a mapping`}},
		{"negative MAC limits", head + hubs("maxMACs: -2, macAgeingSeconds: -1"),
			[]string{`hubs[2].maxMACs -2 is negative: use 0 for the default (65536) (hub "c")`,
				`hubs[2].macAgeingSeconds -1 is negative: use 0 for the default (600) (hub "c")`}},
		{"duplicate hub name", head + "hubs:\n- {name: a, type: Static}\n- {name: a, type: Static}\n",
			[]string{`hubs[1].name "a" is listed twice (also hubs[0]): hub names must be unique`}},
		{"misspelt nested field", head + hubs("maxsessions: 5"),
			[]string{`unknown field "hubs[2].maxsessions": did you mean "maxSessions"? field names are case-sensitive`}},
		{"unknown field", head + "colour: blue\nhubs: []\n",
			[]string{`unknown field "colour": remove it`}},
		{"port out of range", head + "listen: 127.0.0.1:99999\nhubs: []\n",
			[]string{`listen "127.0.0.1:99999": port 99999 is out of range: a TCP port is at most 65535`}},
		{"no port", head + "listen: 10.0.0.1\nhubs: []\n",
			[]string{`listen "10.0.0.1": not host:port`, `write it like :8443`}},
		{"CIDR for an address", head + "listen: 10.0.0.0/8:8443\nhubs: []\n",
			[]string{`listen "10.0.0.0/8:8443": host "10.0.0.0/8" is not an IP address or host name`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "member.yaml")
			write(t, p, []byte(tc.yaml))
			_, err := LoadConfig(p, nil)
			if err == nil {
				t.Fatalf("config accepted:\n%s", tc.yaml)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error\n  %v\nwant it to say\n  %s", err, want)
				}
			}
		})
	}
}

func TestListenAddressesMembersUseAreAccepted(t *testing.T) {
	for _, addr := range []string{":8443", "0.0.0.0:8443", "[::]:8443", "127.0.0.1:0", "vpn.example.com:443", "[fe80::1%eth0]:8443", ":https"} {
		if err := checkListen(addr); err != nil {
			t.Errorf("listen %q refused: %v", addr, err)
		}
	}
}

// The same file must get the same answer on reload as at start: a reload that
// accepted an unusable listen address left a member that failed at its next
// restart, long after whoever edited the file had moved on.
func TestReloadRefusesWhatStartRefuses(t *testing.T) {
	m := startMember(t, nil)
	dir := t.TempDir()
	cfg := baseConfig(t, m.dir)
	path := filepath.Join(dir, "member.yaml")
	write(t, path, marshalConfig(t, cfg))

	var logs testutil.SyncBuffer
	w, err := NewConfigWatcher(path, m.srv, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); w.Close(); <-done })

	bad := *cfg
	bad.Listen = "127.0.0.1:99999"
	write(t, path, marshalConfig(t, &bad))
	_, startErr := LoadConfig(path, nil)
	if startErr == nil || !strings.Contains(startErr.Error(), `listen "127.0.0.1:99999"`) {
		t.Fatalf("at start: %v, want a refusal naming listen", startErr)
	}
	eventually(t, 10*time.Second, "reload with listen 127.0.0.1:99999 not refused", func() bool {
		return strings.Contains(logs.String(), "new configuration rejected")
	})
	if got := logs.String(); !strings.Contains(got, `listen \"127.0.0.1:99999\": port 99999 is out of range`) ||
		strings.Contains(got, "takes effect when the member restarts") {
		t.Errorf("reload log does not refuse the listen address by name:\n%s", got)
	}

	// A bad duration on reload names its field too.
	write(t, path, []byte(`{"keepaliveInterval":"fast",`+strings.TrimPrefix(string(marshalConfig(t, cfg)), "{")))
	eventually(t, 10*time.Second, "reload with keepaliveInterval: fast not refused", func() bool {
		return strings.Contains(logs.String(), `keepaliveInterval: duration \"fast\": write it like 1s, 500ms or 2m`)
	})
	if hubNames(m.srv) != "alpha,beta" {
		t.Errorf("hubs after rejected reloads: %s", hubNames(m.srv))
	}
}

// The allocation's key is "licenses" (one spelling, as the ConnectionLicense
// kind); the old "licences" is read for one more release with a warning that
// names the new key, and a file giving both is refused naming both.
func TestOldLicenseKeySpelling(t *testing.T) {
	dir := t.TempDir()
	writePKI(t, dir)
	const head = "certFile: tls.crt\nkeyFile: tls.key\nhubs: []\n"
	load := func(t *testing.T, yaml string) (*Config, string, error) {
		p := filepath.Join(dir, "member.yaml")
		write(t, p, []byte(yaml))
		var logs testutil.SyncBuffer
		cfg, err := LoadConfig(p, slog.New(slog.NewTextHandler(&logs, nil)))
		return cfg, logs.String(), err
	}

	cfg, logs, err := load(t, head+"licences: {client: 7, bridge: 2}\n")
	if err != nil {
		t.Fatalf("old key refused: %v", err)
	}
	if cfg.Licenses == nil || *cfg.Licenses != (Licenses{Client: 7, Bridge: 2}) {
		t.Errorf("old key read as %+v; want client 7, bridge 2", cfg.Licenses)
	}
	for _, want := range []string{"level=WARN", "deprecated key", "key=licences", "use=licenses"} {
		if !strings.Contains(logs, want) {
			t.Errorf("warning for the old key does not say %q:\n%s", want, logs)
		}
	}

	cfg, logs, err = load(t, head+"licenses: {client: 7, bridge: 2}\n")
	if err != nil || cfg.Licenses == nil || cfg.Licenses.Client != 7 {
		t.Errorf("new key: %+v, %v", cfg, err)
	}
	if logs != "" {
		t.Errorf("new key logged:\n%s", logs)
	}

	_, _, err = load(t, head+"licenses: {client: 7, bridge: 2}\nlicences: {client: 7, bridge: 2}\n")
	if err == nil || !strings.Contains(err.Error(), "licenses and licences are both given") || !strings.Contains(err.Error(), "keep licenses only") {
		t.Errorf("both keys: %v; want a refusal naming both", err)
	}
}
