// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/hub"
)

// A static hub's singleton services run on exactly one member process at a
// time: the local bridge (bridge.go) and the DHCP server (dhcp.go). The
// operator names the holder in the hub's status and activates the service
// for one process (controllers/virtualhub_singleton.go); a member runs a
// static hub's singleton while:
//   - the status names it (status.localBridge, status.dhcpServer) and the
//     service's condition (Bridged, DHCPServer) is True;
//   - its Lease is fresh (with singletonFenceMargin to spare);
//   - the activation is not the one it found when it started: the
//     condition's message names the process the operator activated the
//     service for, so a restarted member waits for an activation naming its
//     new process. The operator relies on this to move a service as soon as
//     the container that held it is gone. "Found when it started" means in
//     the process's first snapshot (its first sync), not at the first look
//     at a hub: a hub given its bridge or DHCP pool later may be seen for
//     the first time already activated (the spec change and the operator's
//     activation arrive in one watch batch), and that activation is for this
//     process: taking it for an inherited one would leave the service down.
//
// docs/bridge.md ("Placement and fencing") states the argument; the DHCP
// server follows it word for word.

// singletonFenceMargin: a member stops its singletons this long before its
// Lease expires, so the operator, which may move them at the expiry, never
// finds one still running because of a late timer or a small clock skew. It
// is capped at half the slack between renewals, so the shortest Lease (2 s,
// renewed every second) does not make a service stop between two healthy
// renewals.
const singletonFenceMargin = time.Second

func singletonMargin(lease, renew time.Duration) time.Duration {
	return max(min(singletonFenceMargin, (lease-renew)/2), 0)
}

// singletonRetry bounds the wait between attempts to start a service that
// cannot start yet (a LAN interface missing or down: a secondary interface
// may be attached after the pod starts).
const singletonRetry = 2 * time.Second

// singletonSpec is one static hub's singleton service as its status shows it.
type singletonSpec struct {
	hub    string // HubName
	conf   string // what the service runs with (interface, pool); a change restarts it
	holder string // status.localBridge / status.dhcpServer
	active bool   // the service's condition is True
	token  string // the condition's message: the activation token
	arg    any    // the kind's own argument (the DHCP pool)
}

// specFromStatus fills holder, active and token from h's status.
func specFromStatus(sp singletonSpec, h *vpnv1alpha1.VirtualHub, holder, condition string) singletonSpec {
	sp.holder = holder
	if c := meta.FindStatusCondition(h.Status.Conditions, condition); c != nil {
		sp.active, sp.token = c.Status == metav1.ConditionTrue, c.Message
	}
	return sp
}

// service is one running singleton.
type service interface {
	// Done is closed when the service failed by itself (its device or hub).
	Done() <-chan struct{}
	Err() error
	// Stop stops it; once it returns nothing of it runs. It returns
	// attributes for the log line saying so.
	Stop() []any
}

// singletons runs one kind of singleton service for the hubs whose status
// names this member.
type singletons struct {
	kind   string // "local bridge", "dhcp server": for logs
	self   string
	log    *slog.Logger
	lease  *leaseState
	margin time.Duration
	// start starts the service for sp on the hub's switch sw.
	start func(sw *hub.Hub, sp singletonSpec) (service, error)
	hubOf func(name string) *hub.Hub
	// reattach, if set, attaches a hub's switch to the mesh again when its
	// service moved (bridge.go: moved).
	reattach func(name string) bool

	mu sync.Mutex
	// synced: sync ran once, so the process's first snapshot is behind it.
	synced bool
	// inherited: the activation message for this member found in the
	// first snapshot, per hub, until the hub's service is deactivated.
	inherited map[string]string
	active    map[string]*runningSingleton
	// activation: the last activation seen per hub (holder and message, ""
	// when none), to notice a service that moved.
	activation map[string]string
}

func newSingletons(kind, self string, log *slog.Logger, lease *leaseState, margin time.Duration,
	hubOf func(string) *hub.Hub, start func(*hub.Hub, singletonSpec) (service, error), reattach func(string) bool) *singletons {
	return &singletons{
		kind: kind, self: self, log: log, lease: lease, margin: margin, hubOf: hubOf, start: start, reattach: reattach,
		inherited: map[string]string{}, active: map[string]*runningSingleton{}, activation: map[string]string{},
	}
}

// runningSingleton is one service and the goroutine keeping it up.
type runningSingleton struct {
	hub    *hub.Hub
	sp     singletonSpec
	cancel context.CancelFunc
	done   chan struct{}
}

// sync starts and stops services to match specs; the loop calls it after
// applying the configuration (a new hub's switch exists only then).
func (b *singletons) sync(specs []singletonSpec, fenced bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := !b.synced
	b.synced = true
	want := map[string]*runningSingleton{}
	listed := map[string]bool{}
	for _, sp := range specs {
		name := sp.hub
		listed[name] = true
		assigned := sp.holder == b.self && sp.active
		switch {
		case assigned && first:
			b.inherited[name] = sp.token
			b.log.Info(b.kind+": the hub's "+b.kind+" was activated for this member before this process started; waiting for the operator to activate it for this process", "hub", name)
		case !assigned:
			delete(b.inherited, name)
		}
		b.moved(sp)
		if !assigned || fenced || b.fenced() {
			continue
		}
		if tok, ok := b.inherited[name]; ok && tok == sp.token {
			continue
		}
		sw := b.hubOf(name)
		if sw == nil {
			continue // not served (yet): status.instances does not name us
		}
		want[name] = &runningSingleton{hub: sw, sp: sp}
	}
	for name, rs := range b.active {
		w, ok := want[name]
		if ok && w.hub == rs.hub && w.sp.conf == rs.sp.conf {
			select {
			case <-rs.done: // fenced by its own timer: start again below
			default:
				delete(want, name)
				continue
			}
		}
		rs.cancel()
		<-rs.done // stopped before anything else happens
		delete(b.active, name)
	}
	for name, w := range want {
		ctx, cancel := context.WithCancel(context.Background())
		w.cancel, w.done = cancel, make(chan struct{})
		b.active[name] = w
		go b.keep(ctx, name, w)
	}
	for name := range b.activation {
		if !listed[name] {
			delete(b.inherited, name)
			delete(b.activation, name)
		}
	}
}

// moved calls reattach when the hub's service was activated anew (another
// member, or the same member's new process); the first look at a hub after
// start does nothing.
func (b *singletons) moved(sp singletonSpec) {
	act := ""
	if sp.active && sp.holder != "" {
		act = sp.holder + "\x00" + sp.token
	}
	prev, known := b.activation[sp.hub]
	b.activation[sp.hub] = act
	if b.reattach == nil || !known || act == "" || act == prev {
		return
	}
	if b.reattach(sp.hub) {
		b.log.Info(b.kind+" moved: hub re-attached to the mesh so MAC addresses learned through the old holder are forgotten", "hub", sp.hub, "holder", sp.holder)
	}
}

// fenced is true once the Lease is within the margin of expiring (or was
// never renewed).
func (b *singletons) fenced() bool { return b.until() <= 0 }

// until is how long until fenced turns true.
func (b *singletons) until() time.Duration { return b.lease.untilWithin(b.margin) }

// keep starts the service (retrying while it cannot start), and stops it
// when ctx ends or the Lease is about to expire. It closes rs.done once the
// service has stopped.
func (b *singletons) keep(ctx context.Context, name string, rs *runningSingleton) {
	defer close(rs.done)
	log := b.log.With("hub", name, b.kind, rs.sp.conf)
	fence := time.NewTimer(max(b.until(), 0))
	defer fence.Stop()
	lastErr := ""
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, singletonRetry) {
		if b.fenced() {
			log.Warn(b.kind + " not started: the member Lease is about to expire")
			return
		}
		svc, err := b.start(rs.hub, rs.sp)
		if err == nil {
			start := time.Now()
			log.Info(b.kind + " up")
			why, attrs := b.run(ctx, svc, fence, log)
			log.Info(b.kind+" down", append([]any{"why", why, "for", time.Since(start).Round(time.Millisecond)}, attrs...)...)
			if why != "failed" {
				return
			}
			lastErr = ""
		} else if msg := err.Error(); msg != lastErr {
			lastErr = msg
			log.Error("cannot start the "+b.kind+"; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-fence.C:
			if b.fenced() {
				return
			}
			fence.Reset(max(b.until(), 0))
		case <-time.After(wait):
		}
	}
}

// run waits until the service must stop and stops it; it returns why:
// "released" (ctx), "fenced", or "failed" (it stopped by itself), and the
// service's closing attributes.
func (b *singletons) run(ctx context.Context, svc service, fence *time.Timer, log *slog.Logger) (string, []any) {
	for {
		select {
		case <-ctx.Done():
			return "released", svc.Stop()
		case <-svc.Done():
			if err := svc.Err(); err != nil {
				log.Error(b.kind+" failed; restarting", "err", err)
			}
			return "failed", svc.Stop()
		case <-fence.C:
			if d := b.until(); d > 0 {
				fence.Reset(d) // renewed meanwhile
				continue
			}
			log.Warn(b.kind+" stopped: the member Lease was not renewed; the operator may move it once it expires", "lease_duration", b.lease.duration)
			return "fenced", svc.Stop()
		}
	}
}

// close stops every service and returns once they have stopped; the member
// calls it first when it stops.
func (b *singletons) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, rs := range b.active {
		rs.cancel()
		<-rs.done
		delete(b.active, name)
	}
}

// running lists the hubs whose service runs now.
func (b *singletons) running() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for name, rs := range b.active {
		select {
		case <-rs.done:
		default:
			out = append(out, name)
		}
	}
	return out
}
