// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// configMapDir lays a config out as the kubelet mounts a ConfigMap: path is a
// symlink through "..data", which each update swaps atomically to a new directory.
type configMapDir struct {
	t   *testing.T
	dir string
	gen int
}

func (c *configMapDir) path() string { return filepath.Join(c.dir, "member.yaml") }

func (c *configMapDir) publish(content []byte) {
	c.t.Helper()
	c.gen++
	ts := filepath.Join(c.dir, "..ts"+strings.Repeat("x", c.gen))
	if err := os.Mkdir(ts, 0o755); err != nil {
		c.t.Fatal(err)
	}
	write(c.t, filepath.Join(ts, "member.yaml"), content)
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if c.gen == 1 {
		if err := os.Symlink(filepath.Join("..data", "member.yaml"), c.path()); err != nil {
			c.t.Fatal(err)
		}
	}
}

func marshalConfig(t *testing.T, cfg *Config) []byte {
	b, err := json.Marshal(cfg) // YAML is a superset of JSON
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hubNames(s *Server) string {
	var names []string
	for _, h := range s.Stats().Hubs {
		names = append(names, h.Name)
	}
	return strings.Join(names, ",")
}

func TestConfigWatcherFollowsConfigMapUpdates(t *testing.T) {
	m := startMember(t, nil)
	a := m.connect(t, pw("alpha", "alice", "alice-pw"))
	b := m.connect(t, pw("alpha", "bob", "bob-pw"))
	cm := &configMapDir{t: t, dir: t.TempDir()}
	cfg := baseConfig(t, m.dir)
	cm.publish(marshalConfig(t, cfg))

	var logs testutil.SyncBuffer
	w, err := NewConfigWatcher(cm.path(), m.srv, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); w.Close(); <-done })

	// An update adding a hub is applied without touching alpha's sessions.
	cfg.Hubs = append(cfg.Hubs, HubConfig{Name: "gamma", Type: HubDynamic, Users: map[string]string{"dave": hashPW(t, "dave-pw")}})
	cm.publish(marshalConfig(t, cfg))
	eventually(t, 10*time.Second, "hub gamma not added after the ConfigMap update", func() bool {
		return hubNames(m.srv) == "alpha,beta,gamma"
	})
	m.connect(t, pw("gamma", "dave", "dave-pw"))

	// A broken update is reported, naming the problem, and changes nothing.
	bad := *cfg
	bad.Hubs = append([]HubConfig{{Name: "delta", Type: "dynamic"}}, cfg.Hubs[1:]...) // also drops alpha
	cm.publish(marshalConfig(t, &bad))
	eventually(t, 10*time.Second, "bad update not reported", func() bool {
		return strings.Contains(logs.String(), `type \"dynamic\" is not a hub type`)
	})
	if got := hubNames(m.srv); got != "alpha,beta,gamma" {
		t.Errorf("hubs after a rejected update: %s", got)
	}
	f := eth(broadcast, mac(1), "after the rejected update")
	a.send(t, f)
	b.expect(t, f)
	if n := strings.Count(logs.String(), "new configuration rejected"); n != 1 {
		t.Errorf("the rejection was logged %d times, want once", n)
	}
}
