// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/hubfleet/hubfleet/pkg/member"
)

// serverConfig is the member server's configuration as the loop last
// applied it. Apply is skipped for a configuration equal to the applied one
// (the loop runs on every change and timer, most of which change nothing).
type serverConfig struct {
	srv *member.Server
	log *slog.Logger

	mu       sync.Mutex
	applied  *member.Config
	dynamic  bool   // the applied configuration has dynamic hubs
	problems string // as last logged
}

// apply hands cfg to the server unless it is the one applied; problems are
// logged when they change.
func (s *serverConfig) apply(cfg *member.Config, problems []string, fenced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := strings.Join(problems, "; "); p != s.problems {
		s.problems = p
		if p != "" {
			s.log.Warn("hub configuration problems", "problems", p)
		}
	}
	if s.applied != nil && reflect.DeepEqual(s.applied, cfg) {
		return
	}
	if err := s.srv.Apply(cfg); err != nil {
		// desired leaves out what Validate refuses, so this is a file problem
		// (certificate, ticket key): keep serving the previous configuration.
		s.log.Error("cannot apply the computed configuration; keeping the previous one", "err", err)
		return
	}
	s.applied = cfg
	s.dynamic = false
	for _, h := range cfg.Hubs {
		s.dynamic = s.dynamic || h.Type != member.HubStatic
	}
	s.log.Info("configuration applied", "hubs", len(cfg.Hubs), "fenced", fenced, "licenses", licString(cfg.Licenses))
}

// invalidate makes the next apply call Apply even for an equal
// configuration: Apply re-reads the serving certificate and the ticket key.
func (s *serverConfig) invalidate() {
	s.mu.Lock()
	s.applied = nil
	s.mu.Unlock()
}

// servesDynamic reports whether the applied configuration has dynamic hubs.
func (s *serverConfig) servesDynamic() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dynamic
}

// hubs are the names of the hubs served now.
func (s *serverConfig) hubs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applied == nil {
		return nil
	}
	out := make([]string, 0, len(s.applied.Hubs))
	for _, h := range s.applied.Hubs {
		out = append(out, h.Name)
	}
	return out
}

func licString(l *member.Licenses) string {
	if l == nil {
		return "unlimited"
	}
	return fmt.Sprintf("client %d, bridge %d", l.Client, l.Bridge)
}
