// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"log/slog"
	"maps"
	"sync"

	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/mesh"
)

// meshState is what the loop gave the mesh: the peers to link with and the
// static hubs' switches attached to it.
type meshState struct {
	mesh *mesh.Mesh
	srv  *member.Server
	log  *slog.Logger

	mu       sync.Mutex
	peers    map[string]string   // member name -> mesh address
	attached map[string]*hub.Hub // static hub -> the switch attached
}

func newMeshState(m *mesh.Mesh, srv *member.Server, log *slog.Logger) *meshState {
	return &meshState{mesh: m, srv: srv, log: log, peers: map[string]string{}, attached: map[string]*hub.Hub{}}
}

// setPeers gives the mesh its peers (SetPeers is idempotent and redials a
// changed address).
func (s *meshState) setPeers(peers map[string]string) {
	s.mesh.SetPeers(peers)
	s.mu.Lock()
	changed := !maps.Equal(s.peers, peers)
	s.peers = peers
	s.mu.Unlock()
	if changed {
		s.log.Info("mesh peers", "peers", peers)
	}
}

// detachLeaving takes the static hubs that leave the configuration off the
// mesh; the loop calls it before Apply closes their switches, so their peer
// ports close first.
func (s *meshState) detachLeaving(static map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.attached {
		if !static[name] {
			s.mesh.DetachHub(name)
			delete(s.attached, name)
		}
	}
}

// attach attaches every static hub served to the mesh, once per switch (a
// hub removed and added again has a new one); the loop calls it after Apply
// created them. The mesh shares a hub only with members that attached it
// too, so status.instances, which decides what each member serves, is all
// it needs.
func (s *meshState) attach(static map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range static {
		h := s.srv.Hub(name)
		if h == nil || s.attached[name] == h {
			continue
		}
		s.mesh.AttachHub(name, h)
		s.attached[name] = h
	}
}

// reattach attaches name's switch again: its peer ports close (forgetting
// the MAC addresses learned through them) and open anew.
func (s *meshState) reattach(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.srv.Hub(name)
	if h == nil {
		return false
	}
	s.mesh.AttachHub(name, h)
	s.attached[name] = h
	return true
}
