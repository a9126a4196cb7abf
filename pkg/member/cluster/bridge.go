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
	"github.com/hubfleet/hubfleet/pkg/bridge"
	"github.com/hubfleet/hubfleet/pkg/hub"
)

// bridgeFenceMargin: a member stops bridging this long before its Lease
// expires, so the operator, which may move the bridge at the expiry, never
// finds it still bridging because of a late timer or a small clock skew. It
// is capped at half the slack between renewals, so the shortest Lease (2 s,
// renewed every second) does not make the bridge stop between two healthy
// renewals.
const bridgeFenceMargin = time.Second

func bridgeMargin(lease, renew time.Duration) time.Duration {
	return max(min(bridgeFenceMargin, (lease-renew)/2), 0)
}

// bridgeRetry bounds the wait between attempts to open a LAN interface that
// is missing or down (a secondary interface may be attached after the pod
// starts).
const bridgeRetry = 2 * time.Second

// The member side of the local bridge (docs/bridge.md). A member bridges a
// static hub it serves to spec.localBridge.interface while:
//   - status.localBridge names it and the Bridged condition is True;
//   - its Lease is fresh (with bridgeFenceMargin to spare);
//   - the activation is not the one it found when it started: the Bridged
//     message names the process the operator activated the bridge for, so a
//     restarted member waits for an activation naming its new process. The
//     operator relies on this to move a bridge as soon as the container
//     that held it is gone.
//
// A local bridge is not a session: it uses no license and is not counted in
// the member's load.
type memberBridges struct {
	self   string
	log    *slog.Logger
	lease  *leaseState
	margin time.Duration
	open   func(iface string) (bridge.Device, error)
	hubOf  func(name string) *hub.Hub
	// reattach attaches a hub's switch to the mesh again (bridgeMoved).
	reattach func(name string) bool

	mu sync.Mutex
	// seen: hubs this process has looked at; inherited: the Bridged message
	// of an activation for this member found at the first look.
	seen      map[string]bool
	inherited map[string]string
	active    map[string]*localBridge
	// activation: the last activation seen per hub (holder and Bridged
	// message, "" when none), to notice a bridge that moved.
	activation map[string]string
}

// localBridge is one running bridge and the goroutine keeping it open.
type localBridge struct {
	hub    *hub.Hub
	iface  string
	token  string
	cancel context.CancelFunc
	done   chan struct{}
}

// bridgeSpec is a static hub's local bridge as its status shows it.
type bridgeSpec struct {
	hub    string // HubName
	iface  string // spec.localBridge.interface
	holder string // status.localBridge
	active bool   // the Bridged condition is True
	token  string // the Bridged message: the activation token
}

// bridgeSpecs are the local bridges of the cluster's static hubs.
func bridgeSpecs(id *Identity, hubs []*vpnv1alpha1.VirtualHub) []bridgeSpec {
	var out []bridgeSpec
	for _, h := range hubs {
		if !id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil ||
			h.Spec.Type != vpnv1alpha1.HubStatic || h.Spec.LocalBridge == nil {
			continue
		}
		b := bridgeSpec{hub: HubName(h), iface: h.Spec.LocalBridge.Interface, holder: h.Status.LocalBridge}
		if c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged); c != nil {
			b.active, b.token = c.Status == metav1.ConditionTrue, c.Message
		}
		out = append(out, b)
	}
	return out
}

// sync starts and stops local bridges to match specs; the loop calls it
// after applying the configuration (a new hub's switch exists only then).
func (b *memberBridges) sync(specs []bridgeSpec, fenced bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]*localBridge{}
	listed := map[string]bool{}
	for _, sp := range specs {
		name := sp.hub
		listed[name] = true
		assigned := sp.holder == b.self && sp.active
		if !b.seen[name] {
			b.seen[name] = true
			if assigned {
				b.inherited[name] = sp.token
				b.log.Info("local bridge: the hub's bridge was activated for this member before this process started; waiting for the operator to activate it for this process", "hub", name)
			}
		} else if !assigned {
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
		want[name] = &localBridge{hub: sw, iface: sp.iface, token: sp.token}
	}
	for name, lb := range b.active {
		w, ok := want[name]
		if ok && w.hub == lb.hub && w.iface == lb.iface {
			select {
			case <-lb.done: // fenced by its own timer: start again below
			default:
				delete(want, name)
				continue
			}
		}
		lb.cancel()
		<-lb.done // the socket is closed before anything else happens
		delete(b.active, name)
	}
	for name, w := range want {
		ctx, cancel := context.WithCancel(context.Background())
		w.cancel, w.done = cancel, make(chan struct{})
		b.active[name] = w
		go b.keep(ctx, name, w)
	}
	for name := range b.seen {
		if !listed[name] {
			delete(b.seen, name)
			delete(b.inherited, name)
			delete(b.activation, name)
		}
	}
}

// bridgeMoved re-attaches the hub to the mesh when its bridge was activated
// anew (another member, or the same member's new process). Every member has
// learned the LAN's MAC addresses behind its mesh port to the old holder; if
// that holder died, frames for the LAN would go to its dead link until the
// mesh declares it dead (seconds) or the LAN host happens to send. Attaching
// again closes this hub's peer ports — forgetting what was learned through
// them — and opens new ones at once, so the next frame for the LAN is flooded
// and reaches the new holder. Only on a move, which is rare; the first look
// at a hub after start does nothing.
func (b *memberBridges) moved(sp bridgeSpec) {
	act := ""
	if sp.active && sp.holder != "" {
		act = sp.holder + "\x00" + sp.token
	}
	prev, known := b.activation[sp.hub]
	b.activation[sp.hub] = act
	if !known || act == "" || act == prev {
		return
	}
	if b.reattach(sp.hub) {
		b.log.Info("local bridge moved: hub re-attached to the mesh so MAC addresses learned through the old bridge are forgotten", "hub", sp.hub, "bridge", sp.holder)
	}
}

// fenced is true once the Lease is within the margin of expiring (or was
// never renewed).
func (b *memberBridges) fenced() bool { return b.until() <= 0 }

// until is how long until fenced turns true.
func (b *memberBridges) until() time.Duration { return b.lease.untilWithin(b.margin) }

// keepBridge opens the interface (retrying while it is missing or down),
// bridges it to the hub, and closes it when ctx ends or the Lease is about to
// expire. It closes lb.done once the device is closed.
func (b *memberBridges) keep(ctx context.Context, name string, lb *localBridge) {
	defer close(lb.done)
	log := b.log.With("hub", name, "interface", lb.iface)
	fence := time.NewTimer(max(b.until(), 0))
	defer fence.Stop()
	lastErr := ""
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, bridgeRetry) {
		if b.fenced() {
			log.Warn("local bridge not started: the member Lease is about to expire")
			return
		}
		dev, err := b.open(lb.iface)
		if err == nil {
			start := time.Now()
			br := bridge.Attach(lb.hub, dev, "local-bridge:"+lb.iface)
			log.Info("local bridge up: the hub is joined to the LAN interface")
			stop := b.run(ctx, br, fence, log)
			st := dev.Stats()
			log.Info("local bridge down: socket closed", "why", stop, "for", time.Since(start).Round(time.Millisecond),
				"rx_frames", st.RxFrames, "tx_frames", st.TxFrames, "segmented", st.Segmented, "dropped", st.Dropped)
			if stop != "device" {
				return
			}
			lastErr = ""
		} else if msg := err.Error(); msg != lastErr {
			lastErr = msg
			log.Error("cannot open the LAN interface for the local bridge; retrying", "err", err)
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

// runBridge waits until the bridge must stop and closes it; it returns why:
// "released" (ctx), "fenced", or "device" (the device or the hub's port failed).
func (b *memberBridges) run(ctx context.Context, br *bridge.Bridge, fence *time.Timer, log *slog.Logger) string {
	for {
		select {
		case <-ctx.Done():
			_ = br.Close()
			return "released"
		case <-br.Done():
			if err := br.Err(); err != nil {
				log.Error("local bridge failed; reopening", "err", err)
			}
			_ = br.Close()
			return "device"
		case <-fence.C:
			if d := b.until(); d > 0 {
				fence.Reset(d) // renewed meanwhile
				continue
			}
			log.Warn("local bridge stopped: the member Lease was not renewed; the operator may move the bridge once it expires", "lease_duration", b.lease.duration)
			_ = br.Close()
			return "fenced"
		}
	}
}

// close stops every local bridge and returns once their sockets are
// closed; the member calls it first when it stops.
func (b *memberBridges) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, lb := range b.active {
		lb.cancel()
		<-lb.done
		delete(b.active, name)
	}
}

// Bridging lists the hubs this member bridges now (for tests and status).
func (m *Member) Bridging() []string {
	b := m.bridges
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for name, lb := range b.active {
		select {
		case <-lb.done:
		default:
			out = append(out, name)
		}
	}
	return out
}
