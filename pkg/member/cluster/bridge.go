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

// openBridgeDevice opens the LAN side of a local bridge; tests replace it.
var openBridgeDevice = func(iface string) (bridge.Device, error) { return bridge.Open(iface, 0) }

// bridgeFenceMargin: a member stops bridging this long before its Lease
// expires, so the operator, which may move the bridge at the expiry, never
// finds it still bridging because of a late timer or a small clock skew. It
// is capped at half the slack between renewals, so the shortest Lease (2 s,
// renewed every second) does not make the bridge stop between two healthy
// renewals.
const bridgeFenceMargin = time.Second

func (m *Member) bridgeMargin() time.Duration {
	return max(min(bridgeFenceMargin, (m.id.LeaseDuration-m.renewInterval())/2), 0)
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
// A local bridge is not a session: it uses no licence and is not counted in
// the member's load.
type memberBridges struct {
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

func newMemberBridges() *memberBridges {
	return &memberBridges{seen: map[string]bool{}, inherited: map[string]string{}, active: map[string]*localBridge{}, activation: map[string]string{}}
}

func (m *Member) localBridges() *memberBridges { return m.bridges }

// syncBridges starts and stops local bridges to match hubs; recompute calls
// it after applying the configuration (a new hub's switch exists only then).
func (m *Member) syncBridges(hubs []*vpnv1alpha1.VirtualHub, fenced bool) {
	b := m.localBridges()
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]*localBridge{}
	for _, h := range hubs {
		if !m.id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil ||
			h.Spec.Type != vpnv1alpha1.HubStatic || h.Spec.LocalBridge == nil {
			continue
		}
		name := HubName(h)
		c := meta.FindStatusCondition(h.Status.Conditions, vpnv1alpha1.ConditionBridged)
		assigned := h.Status.LocalBridge == m.id.Name && c != nil && c.Status == metav1.ConditionTrue
		if !b.seen[name] {
			b.seen[name] = true
			if assigned {
				b.inherited[name] = c.Message
				m.log.Info("local bridge: the hub's bridge was activated for this member before this process started; waiting for the operator to activate it for this process", "hub", name)
			}
		} else if !assigned {
			delete(b.inherited, name)
		}
		m.bridgeMoved(b, name, h, c)
		if !assigned || fenced || m.bridgeFenced() {
			continue
		}
		if tok, ok := b.inherited[name]; ok && tok == c.Message {
			continue
		}
		sw := m.srv.Hub(name)
		if sw == nil {
			continue // not served (yet): status.instances does not name us
		}
		want[name] = &localBridge{hub: sw, iface: h.Spec.LocalBridge.Interface, token: c.Message}
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
		go m.keepBridge(ctx, name, w)
	}
	for name := range b.seen {
		if !containsHub(hubs, name) {
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
func (m *Member) bridgeMoved(b *memberBridges, name string, h *vpnv1alpha1.VirtualHub, c *metav1.Condition) {
	act := ""
	if c != nil && c.Status == metav1.ConditionTrue && h.Status.LocalBridge != "" {
		act = h.Status.LocalBridge + "\x00" + c.Message
	}
	prev, known := b.activation[name]
	b.activation[name] = act
	if !known || act == "" || act == prev {
		return
	}
	if sw := m.srv.Hub(name); sw != nil {
		m.mesh.AttachHub(name, sw)
		m.log.Info("local bridge moved: hub re-attached to the mesh so MAC addresses learned through the old bridge are forgotten", "hub", name, "bridge", h.Status.LocalBridge)
	}
}

func containsHub(hubs []*vpnv1alpha1.VirtualHub, name string) bool {
	for _, h := range hubs {
		if HubName(h) == name {
			return true
		}
	}
	return false
}

// bridgeFenced is true once the Lease is within bridgeFenceMargin of
// expiring (or was never renewed).
func (m *Member) bridgeFenced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastRenew.IsZero() || m.resync || time.Since(m.lastRenew) >= m.id.LeaseDuration-m.bridgeMargin()
}

// untilBridgeFence is how long until bridgeFenced turns true.
func (m *Member) untilBridgeFence() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastRenew.IsZero() || m.resync {
		return 0
	}
	return m.id.LeaseDuration - m.bridgeMargin() - time.Since(m.lastRenew)
}

// keepBridge opens the interface (retrying while it is missing or down),
// bridges it to the hub, and closes it when ctx ends or the Lease is about to
// expire. It closes lb.done once the device is closed.
func (m *Member) keepBridge(ctx context.Context, name string, lb *localBridge) {
	defer close(lb.done)
	log := m.log.With("hub", name, "interface", lb.iface)
	fence := time.NewTimer(max(m.untilBridgeFence(), 0))
	defer fence.Stop()
	lastErr := ""
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, bridgeRetry) {
		if m.bridgeFenced() {
			log.Warn("local bridge not started: the member Lease is about to expire")
			return
		}
		dev, err := openBridgeDevice(lb.iface)
		if err == nil {
			start := time.Now()
			br := bridge.Attach(lb.hub, dev, "local-bridge:"+lb.iface)
			log.Info("local bridge up: the hub is joined to the LAN interface")
			stop := m.runBridge(ctx, br, fence, log)
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
			if m.bridgeFenced() {
				return
			}
			fence.Reset(max(m.untilBridgeFence(), 0))
		case <-time.After(wait):
		}
	}
}

// runBridge waits until the bridge must stop and closes it; it returns why:
// "released" (ctx), "fenced", or "device" (the device or the hub's port failed).
func (m *Member) runBridge(ctx context.Context, br *bridge.Bridge, fence *time.Timer, log *slog.Logger) string {
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
			if d := m.untilBridgeFence(); d > 0 {
				fence.Reset(d) // renewed meanwhile
				continue
			}
			log.Warn("local bridge stopped: the member Lease was not renewed; the operator may move the bridge once it expires", "lease_duration", m.id.LeaseDuration)
			_ = br.Close()
			return "fenced"
		}
	}
}

// stopBridges closes every local bridge; Run calls it when the member stops.
func (m *Member) stopBridges() {
	b := m.localBridges()
	b.mu.Lock()
	for name, lb := range b.active {
		lb.cancel()
		<-lb.done
		delete(b.active, name)
	}
	b.mu.Unlock()
}

// Bridging lists the hubs this member bridges now (for tests and status).
func (m *Member) Bridging() []string {
	b := m.localBridges()
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
