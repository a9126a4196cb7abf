// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
)

// The member's one loop (docs/member-cluster.md, "Structure"). Level
// triggered: whatever woke it — an object changed, the Lease was renewed or
// is expiring, a peer died, a connection waits for the fence — a pass takes a
// snapshot of everything, computes the whole desired state with pure
// functions (makePlan) and hands each component its part. No pass depends on
// what woke it or on the pass before, so a missed or merged event costs
// nothing but latency, and the order in which components are updated is
// written once, in act.

// passes lets goroutines wait for the next pass to finish (a held login
// waiting for its hub's move, a connection waiting for the fence).
type passes struct {
	mu sync.Mutex
	ch chan struct{}
}

func newPasses() *passes { return &passes{ch: make(chan struct{})} }

// next is closed when the pass after this call ends. Take it before reading
// the state it guards, so no pass can slip in between.
func (p *passes) next() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch
}

func (p *passes) done() {
	p.mu.Lock()
	close(p.ch)
	p.ch = make(chan struct{})
	p.mu.Unlock()
}

// poke asks for a pass after the debounce (an object changed).
func (m *Member) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// urge asks for a pass at once (the fence, a death, a failed move).
func (m *Member) urge() {
	select {
	case m.urgent <- struct{}{}:
	default:
	}
}

// loop runs passes until ctx ends or the server stops: an object change
// after a quiet period at once, a burst of them after Debounce; a renewal,
// an urge and the plan's own wake-up time at once.
func (m *Member) loop(ctx context.Context, c crcache.Cache, served chan error, wake time.Duration) error {
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	timer := time.NewTimer(wake)
	defer timer.Stop()
	pending := false
	var last time.Time // the last pass a kick caused
	pass := func() {
		timer.Stop()
		timer.Reset(m.pass(ctx, c))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return fmt.Errorf("member stopped serving: %w", err)
		case <-m.kick:
			// Leading edge: the first change after a quiet period (a hub
			// moved here in a failover) is applied at once; a burst that
			// follows is gathered for Debounce.
			switch {
			case pending:
			case time.Since(last) >= m.opts.Debounce:
				last = time.Now()
				pass()
			default:
				pending = true
				debounce.Reset(m.opts.Debounce)
			}
		case <-debounce.C:
			pending = false
			last = time.Now()
			pass()
		case <-m.renewed:
			m.resyncStep(ctx)
			pass()
		case <-m.urgent:
			pass()
		case <-timer.C:
			pass()
		}
	}
}

// pass takes a snapshot, plans and acts, and returns how long until the
// plan changes by itself (a Lease expiring, a failover falling due).
func (m *Member) pass(ctx context.Context, c crcache.Cache) time.Duration {
	s, err := m.snapshot(ctx, c)
	if err != nil {
		m.log.Error("reading the cluster's objects from the cache; the configuration is unchanged", "err", err)
		m.passes.done()
		return time.Second
	}
	p := m.planner.makePlan(s)
	m.act(p)
	m.passes.done()
	wake := earliest(p.wake, m.failover.retryAt())
	d := m.lease.until()
	if !wake.IsZero() {
		d = min(d, max(time.Until(wake), 10*time.Millisecond))
	}
	return d
}

// snapshot reads the informers' objects and the member's own state.
func (m *Member) snapshot(ctx context.Context, c crcache.Cache) (*snapshot, error) {
	var hubs vpnv1alpha1.VirtualHubList
	if err := c.List(ctx, &hubs); err != nil {
		return nil, fmt.Errorf("listing VirtualHubs: %w", err)
	}
	var lics vpnv1alpha1.ConnectionLicenseList
	if err := c.List(ctx, &lics); err != nil {
		return nil, fmt.Errorf("listing ConnectionLicenses: %w", err)
	}
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(m.id.Namespace), client.MatchingLabels(memberlease.Labels(m.id.Cluster))); err != nil {
		return nil, fmt.Errorf("listing member Leases: %w", err)
	}
	s := &snapshot{now: time.Now(), secret: m.secrets.get, leases: make(map[string]*coordinationv1.Lease, len(leases.Items))}
	for i := range hubs.Items {
		s.hubs = append(s.hubs, &hubs.Items[i])
	}
	for i := range lics.Items {
		s.licenses = append(s.licenses, &lics.Items[i])
	}
	for i := range leases.Items {
		s.leases[leases.Items[i].Name] = &leases.Items[i]
	}
	var vc vpnv1alpha1.VPNCluster
	if err := c.Get(ctx, types.NamespacedName{Namespace: m.id.Namespace, Name: m.id.Cluster}, &vc); err == nil {
		s.cluster = &vc
	} else {
		m.log.Error("reading the VPNCluster from the cache; mesh peers and routes without it", "err", err)
	}
	s.fenced = m.lease.decide(s.hubs)
	s.dead = m.failover.certs(s.now)
	return s, nil
}

// act hands each component its part of p, in the one order that keeps every
// moment consistent:
//  1. Secret informers for every namespace with a hub of the cluster, so a
//     hub moved here later is served without waiting for one to start;
//  2. the mesh peers;
//  3. static hubs leaving the configuration leave the mesh before Apply
//     closes their switches;
//  4. the routes, and relays whose route is gone end;
//  5. license loans reconciled with the peers' reports, then the server's
//     configuration (Apply: the allocation);
//  6. static hubs attached to the mesh (their switches exist only now);
//  7. local bridges and static hubs' DHCP servers (after 5 and 6: each
//     needs its hub's switch, and a moved bridge re-attaches the hub);
//  8. the failover worker.
func (m *Member) act(p plan) {
	m.secrets.ensure(p.config.secretNamespaces)
	m.meshes.setPeers(p.view.peers)
	m.meshes.detachLeaving(p.static)
	m.view.Store(p.view)
	m.relays.endMoved(p.view)
	if was := m.lease.setApplied(p.fenced); was != p.fenced {
		if p.fenced {
			m.log.Warn("fenced: the member Lease was not renewed within its duration; dynamic hubs are no longer served so that no two members serve one", "lease_duration", m.id.LeaseDuration)
		} else {
			m.log.Info("Lease renewed: dynamic hubs placed here are served again")
		}
	}
	m.loans.reconcile(p.loans)
	m.config.apply(p.config.cfg, p.config.problems, p.fenced)
	m.meshes.attach(p.static)
	m.bridges.sync(p.bridges, p.fenced)
	m.dhcp.sync(p.dhcp, p.fenced)
	if !p.failover.due.empty() {
		m.failover.hand(p.failover)
	}
}
