// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/dhcp"
	"github.com/hubfleet/hubfleet/pkg/hub"
)

// DHCPSettings is a VirtualHub's (or member file's) dhcp section as pkg/dhcp
// checks it; the zero Settings for nil, which Config refuses.
func DHCPSettings(d *v1alpha1.DHCPSpec) dhcp.Settings {
	if d == nil {
		return dhcp.Settings{}
	}
	return dhcp.Settings{
		Prefix: d.Prefix, RangeStart: d.RangeStart, RangeEnd: d.RangeEnd,
		Router: d.Router, DNSServers: d.DNSServers, LeaseSeconds: int(d.LeaseSeconds),
	}
}

// dhcpConfig is the hub's checked pool, or nil when the hub has none.
func (h *HubConfig) dhcpConfig() (*dhcp.Config, error) {
	if h.DHCP == nil {
		return nil, nil
	}
	c, err := DHCPSettings(h.DHCP).Config()
	if err != nil {
		return nil, err
	}
	c.ServerMAC = dhcp.MACFor(h.Name)
	return c, nil
}

// dhcpPort is a hub's DHCP server attached to its switch as one more port:
// the switch floods it broadcasts and unknown unicast and delivers what is
// sent to its MAC, like any station's. A hub without DHCP has no such port,
// so the forwarding path is the same as before DHCP existed.
type dhcpPort struct {
	srv    *dhcp.Server
	spec   *v1alpha1.DHCPSpec // what it was started from, to tell a change
	held   bool               // started by HoldDHCP, not by the configuration
	port   *hub.Port
	cancel context.CancelFunc
	done   chan struct{}
	now    func() time.Time
	// changed is called after the server handled a DHCP message (its
	// leases may have changed), on the server's goroutine: the hub's
	// sessionsChanged, so the pool's use reaches the status with the
	// member's session report (Options.OnSessions).
	changed func()
}

// batch is how many frames the server takes from its queue at once.
const dhcpBatch = 64

func startDHCP(sw *hub.Hub, c *dhcp.Config, now func() time.Time, log *slog.Logger, changed func()) *dhcpPort {
	d := &dhcpPort{port: sw.Attach(hub.PortSession, "dhcp"), done: make(chan struct{}), now: now, changed: changed}
	one := make([]*hub.Frame, 1)
	// send runs on the server goroutine only (Handle, Tick and Announce are
	// called there), which is the one goroutine allowed to Forward on the port.
	send := func(b []byte) {
		f := hub.NewFrameSize(len(b))
		f.SetLen(copy(f.Buf(), b))
		one[0] = f
		d.port.Forward(one)
	}
	d.srv = dhcp.NewServer(c, send, log.With("hub", sw.Name()))
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.run(ctx)
	return d
}

func (d *dhcpPort) run(ctx context.Context) {
	defer close(d.done)
	d.srv.Announce()
	frames := make([]*hub.Frame, dhcpBatch)
	var next time.Time
	for {
		// Only while a probe is in flight does the server need waking
		// without a frame; otherwise it waits on its queue alone.
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if !next.IsZero() {
			dctx, cancel = context.WithDeadline(ctx, next)
		}
		n, err := d.port.Dequeue(dctx, frames)
		cancel()
		if err != nil && ctx.Err() != nil || err == hub.ErrPortClosed {
			return
		}
		now := d.now()
		messages := false
		for _, f := range frames[:n] {
			if dhcp.Wants(f.B) {
				d.srv.Handle(f.B, now)
				messages = messages || f.B[12] == 0x08 && f.B[13] == 0x00 // not ARP
			}
			f.Release()
		}
		next = d.srv.Tick(now)
		if messages {
			d.changed()
		}
	}
}

// stop detaches the server and waits for its goroutine.
func (d *dhcpPort) stop() {
	d.cancel()
	d.port.Close()
	<-d.done
}

// unjoin splits an errors.Join into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// dhcpStats returns the DHCP server statistics of each hub that has one.
func (s *Server) dhcpStats() map[string]dhcp.Stats {
	s.mu.Lock()
	servers := map[string]*dhcpPort{}
	for name, hs := range s.hubs {
		hs.mu.Lock()
		if hs.dhcp != nil {
			servers[name] = hs.dhcp
		}
		hs.mu.Unlock()
	}
	s.mu.Unlock()
	out := make(map[string]dhcp.Stats, len(servers))
	for name, d := range servers {
		out[name] = d.srv.Stats(d.now())
	}
	return out
}

// DHCPHold is a DHCP server run on a hub outside the configuration
// (HoldDHCP).
type DHCPHold struct {
	hs *hubState
	d  *dhcpPort
}

// HoldDHCP starts a DHCP server with pool d on hub name, whose switch must
// still be sw (a hub closed and served again has a new switch, and the
// caller decided for the old one). Cluster mode runs a static hub's one
// server this way, on the member the operator names, and stops it with its
// own fence (pkg/member/cluster, singleton.go); the configuration of a hub
// served with a held server has no dhcp, and Apply leaves the held server
// alone. Closing the hub stops it: Done is closed.
//
// The server starts with an empty table and announces its address (a
// gratuitous ARP from the hub's server MAC, the same on every member), so
// the segment learns where it now is; clients' renewals teach it their
// leases after a probe (pkg/dhcp), as after a dynamic hub's move.
//
// Its start, stop and every DHCP exchange are reported as a change of the
// hub's sessions (Options.OnSessions), whose report carries the pool's use
// (DHCPUse).
func (s *Server) HoldDHCP(name string, sw *hub.Hub, d *v1alpha1.DHCPSpec) (*DHCPHold, error) {
	c, err := DHCPSettings(d).Config()
	if err != nil {
		return nil, err
	}
	c.ServerMAC = dhcp.MACFor(name)
	s.mu.Lock()
	hs := s.hubs[name]
	s.mu.Unlock()
	if hs == nil || hs.sw != sw {
		return nil, fmt.Errorf("hub %s is not served here (any more)", name)
	}
	hs.mu.Lock()
	switch {
	case hs.removed:
		hs.mu.Unlock()
		return nil, fmt.Errorf("hub %s is being removed", name)
	case hs.dhcp != nil:
		hs.mu.Unlock()
		return nil, fmt.Errorf("hub %s runs a DHCP server already", name)
	}
	p := startDHCP(hs.sw, c, hs.now, s.log, hs.sessionsChanged)
	p.spec, p.held = d, true
	hs.dhcp = p
	hs.mu.Unlock()
	hs.sessionsChanged()
	return &DHCPHold{hs: hs, d: p}, nil
}

// Done is closed when the server stopped by itself (its hub was closed).
func (h *DHCPHold) Done() <-chan struct{} { return h.d.done }

// Stop stops the server and detaches it from its hub; it returns once the
// server's goroutine has ended, so no reply is sent after it.
func (h *DHCPHold) Stop() {
	h.hs.mu.Lock()
	if h.hs.dhcp == h.d {
		h.hs.dhcp = nil
	}
	h.hs.mu.Unlock()
	h.d.stop()
	h.hs.sessionsChanged()
}

// Stats are the server's figures now.
func (h *DHCPHold) Stats() dhcp.Stats { return h.d.srv.Stats(h.d.now()) }

// DHCPUse is the statistics of hub's DHCP server if it runs on this member
// (from the configuration or HoldDHCP).
func (s *Server) DHCPUse(hub string) (dhcp.Stats, bool) {
	s.mu.Lock()
	hs := s.hubs[hub]
	s.mu.Unlock()
	if hs == nil {
		return dhcp.Stats{}, false
	}
	hs.mu.Lock()
	d := hs.dhcp
	hs.mu.Unlock()
	if d == nil {
		return dhcp.Stats{}, false
	}
	return d.srv.Stats(d.now()), true
}
