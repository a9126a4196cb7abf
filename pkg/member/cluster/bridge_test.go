// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/bridge"
	"github.com/hubfleet/hubfleet/pkg/ethdev"
)

// fakeLAN stands for LAN interfaces: it records which are open. The real
// AF_PACKET device is tested in pkg/bridge and test/netns (it needs root).
var fakeLAN = struct {
	sync.Mutex
	open   map[string]int         // interface -> devices open now
	opened map[string]int         // interface -> devices opened so far
	cur    map[string]*fakeDevice // interface -> the device opened last
}{open: map[string]int{}, opened: map[string]int{}, cur: map[string]*fakeDevice{}}

// openFakeLAN is every test member's Options.OpenBridge.
func openFakeLAN(iface string) (bridge.Device, error) {
	fakeLAN.Lock()
	defer fakeLAN.Unlock()
	fakeLAN.open[iface]++
	fakeLAN.opened[iface]++
	d := &fakeDevice{name: iface, closed: make(chan struct{}), in: make(chan []byte, 16), out: make(chan []byte, 256)}
	fakeLAN.cur[iface] = d
	return d, nil
}

// fakeDevice is a LAN: frames put on in arrive from the LAN, frames the
// bridge writes appear on out.
type fakeDevice struct {
	name    string
	once    sync.Once
	closed  chan struct{}
	in, out chan []byte
}

func (d *fakeDevice) Name() string              { return d.name }
func (d *fakeDevice) MTU() int                  { return 1500 }
func (d *fakeDevice) BatchSize() int            { return 8 }
func (d *fakeDevice) Offload() ethdev.Offload   { return ethdev.Offload{} }
func (d *fakeDevice) Stats() bridge.DeviceStats { return bridge.DeviceStats{} }
func (d *fakeDevice) Write(bufs [][]byte, offset int) (int, error) {
	for _, f := range bufs {
		select {
		case d.out <- append([]byte(nil), f[offset:]...):
		default:
		}
	}
	return len(bufs), nil
}
func (d *fakeDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case f := <-d.in:
		sizes[0] = copy(bufs[0][offset:], f)
		return 1, nil
	case <-d.closed:
		return 0, bridge.ErrClosed
	}
}
func (d *fakeDevice) Close() error {
	d.once.Do(func() {
		close(d.closed)
		fakeLAN.Lock()
		fakeLAN.open[d.name]--
		fakeLAN.Unlock()
	})
	return nil
}

func lanDevice(iface string) *fakeDevice {
	fakeLAN.Lock()
	defer fakeLAN.Unlock()
	return fakeLAN.cur[iface]
}

// sawFrame waits for a frame with tag on the device's LAN side, sending
// again through send while waiting (the mesh may still be linking).
func sawFrame(t *testing.T, d *fakeDevice, tag string, send func()) {
	t.Helper()
	eventually(t, 15*time.Second, "the LAN receives "+tag, func() error {
		send()
		deadline := time.After(200 * time.Millisecond)
		for {
			select {
			case f := <-d.out:
				if strings.HasPrefix(string(f[14:]), tag) {
					return nil
				}
			case <-deadline:
				return fmt.Errorf("no %q", tag)
			}
		}
	})
}

func lanState(iface string) (open, opened int) {
	fakeLAN.Lock()
	defer fakeLAN.Unlock()
	return fakeLAN.open[iface], fakeLAN.opened[iface]
}

func waitLAN(t *testing.T, iface string, open, opened int) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%s open %d, opened %d", iface, open, opened), func() error {
		if o, n := lanState(iface); o != open || n != opened {
			return fmt.Errorf("open %d, opened %d", o, n)
		}
		return nil
	})
}

func newBridgeHub(t *testing.T, ns, name, iface string) {
	t.Helper()
	create(t, &vpnv1alpha1.VirtualHub{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: vpnv1alpha1.VirtualHubSpec{
			ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, Type: vpnv1alpha1.HubStatic,
			Users:       &vpnv1alpha1.UsersSpec{SecretName: "users"},
			LocalBridge: &vpnv1alpha1.LocalBridgeSpec{Interface: iface},
		},
	})
}

// bridgeStatus is the status the operator writes for a bridge on member,
// activated (Bridged True) for container, or released.
func bridgeStatus(member string, active bool, container string) vpnv1alpha1.VirtualHubStatus {
	c := metav1.Condition{Type: vpnv1alpha1.ConditionBridged, Status: metav1.ConditionTrue, Reason: "Bridged",
		Message: "member " + member + " bridges interface x (container " + container + ")", LastTransitionTime: metav1.Now()}
	if !active {
		c.Status, c.Reason = metav1.ConditionFalse, "BridgeReleasing"
	}
	return vpnv1alpha1.VirtualHubStatus{
		Instances:   []vpnv1alpha1.HubInstance{{Member: "vpn-member-0", Ready: true}, {Member: "vpn-member-1", Ready: true}},
		LocalBridge: member, Conditions: []metav1.Condition{c},
	}
}

// renewedAndServing waits until the member renewed its Lease and serves hub:
// a recompute after the renewal has run, and with it the bridge sync.
func renewedAndServing(t *testing.T, r *runner, hub string) {
	t.Helper()
	eventually(t, 15*time.Second, "renewed and serving "+hub, func() error {
		st := r.m.State()
		if st.LastRenew.IsZero() || st.Fenced {
			return fmt.Errorf("not renewed (fenced %v)", st.Fenced)
		}
		for _, h := range st.Hubs {
			if h == hub {
				return nil
			}
		}
		return fmt.Errorf("hubs %v", st.Hubs)
	})
}

// The member opens the LAN interface exactly while the status names it with
// Bridged True, closes it when released, moved away, on shutdown and when
// the hub is deleted; a restarted process does not bridge the activation it
// found at start, only a new one naming its process.
func TestLocalBridgeFollowsStatus(t *testing.T) {
	ns := fixture(t)
	iface := "lan-" + ns[len(ns)-5:]
	newBridgeHub(t, ns, "lan", iface)
	hub := ns + "/lan"
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-1", true, "other"))

	t.Run("first process", func(t *testing.T) {
		r := startMember(t, ns, "vpn-member-0", env.Config)
		renewedAndServing(t, r, hub)
		if o, _ := lanState(iface); o != 0 {
			t.Fatal("bridging while the bridge is on another member")
		}
		setStatus(t, ns, "lan", bridgeStatus("vpn-member-0", true, "aaa"))
		waitLAN(t, iface, 1, 1)
		setStatus(t, ns, "lan", bridgeStatus("vpn-member-0", false, "aaa"))
		waitLAN(t, iface, 0, 1)
		setStatus(t, ns, "lan", bridgeStatus("vpn-member-0", true, "aaa"))
		waitLAN(t, iface, 1, 2)
		// The end of this subtest stops the member: shutdown closes it.
	})
	waitLAN(t, iface, 0, 2)

	// The status still activates the bridge for the old process.
	r := startMember(t, ns, "vpn-member-0", env.Config)
	renewedAndServing(t, r, hub)
	if o, n := lanState(iface); o != 0 || n != 2 {
		t.Fatalf("a restarted process took the activation it found at start (open %d, opened %d)", o, n)
	}
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-0", true, "bbb"))
	waitLAN(t, iface, 1, 3)
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-1", true, "ccc"))
	waitLAN(t, iface, 0, 3)
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-0", true, "ddd"))
	waitLAN(t, iface, 1, 4)
	if err := k8s.Delete(bg(), &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lan"}}); err != nil {
		t.Fatal(err)
	}
	waitLAN(t, iface, 0, 4)
}

// A member whose Lease renewals fail stops bridging before its Lease
// expires, and bridges again once renewed.
func TestLocalBridgeFenced(t *testing.T) {
	ns := fixture(t)
	iface := "lan-" + ns[len(ns)-5:]
	newBridgeHub(t, ns, "lan", iface)
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-1", true, "other"))
	blocker := &leaseBlocker{}
	rc := rest.CopyConfig(env.Config)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { blocker.next = rt; return blocker }
	r := startMember(t, ns, "vpn-member-0", rc)
	renewedAndServing(t, r, ns+"/lan")
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-0", true, "aaa"))
	waitLAN(t, iface, 1, 1)

	blocker.on.Store(true)
	waitLAN(t, iface, 0, 1)
	// It stopped before the fence of the dynamic hubs, which comes at the
	// Lease expiry: the operator moves the bridge no sooner than that.
	if r.m.State().Fenced {
		t.Error("the bridge stopped only once the member was fenced; it must stop a margin earlier")
	}
	blocker.on.Store(false)
	waitLAN(t, iface, 1, 2)
}

// When the bridge moves while the old holder stays up (a graceful move), a
// member must not keep sending LAN-bound frames to the old holder's mesh port,
// where they reach no LAN: it re-attaches the hub to the mesh, forgets what it
// learned through that port, and floods to the new bridge.
func TestLocalBridgeMoveForgetsOldHolderMACs(t *testing.T) {
	ns, iface, m0, _ := bridgedOnMember1(t)
	lan1 := lanDevice(iface)

	// A client at m0 reaches the LAN through m1's bridge, and a LAN host
	// answers: m0 learns the LAN host behind its mesh port to m1.
	c0 := m0.frameLogin(t, ns+"/lan", "alice", "c0")
	lanHost := mac(0x99)
	sawFrame(t, lan1, "hello", func() { c0.send(t, frame(broadcast, mac(1), "hello")) })
	lan1.in <- frame(mac(1), lanHost, "reply")
	if err := c0.receive(10*time.Second, "reply"); err != nil {
		t.Fatal(err)
	}

	// The bridge moves to m0; m1 stays up.
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-0", true, "bbb"))
	waitLAN(t, iface, 1, 2)
	lan0 := lanDevice(iface)
	sawFrame(t, lan0, "to-lan", func() { c0.send(t, frame(lanHost, mac(1), "to-lan")) })
}

// bridgedOnMember1 runs two meshed members serving static hub "lan" with a
// local bridge, activated for vpn-member-1 after both started (one found at
// start is not taken), and waits until its LAN interface is open.
func bridgedOnMember1(t *testing.T) (ns, iface string, m0, m1 *runner) {
	t.Helper()
	ns = fixture(t)
	twoMembersWithIPs(t, ns)
	iface = "lan-" + ns[len(ns)-5:]
	newBridgeHub(t, ns, "lan", iface)
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-1", false, "bbb"))
	m0, m1, _ = meshPair(t, ns)
	renewedAndServing(t, m0, ns+"/lan")
	renewedAndServing(t, m1, ns+"/lan")
	setStatus(t, ns, "lan", bridgeStatus("vpn-member-1", true, "aaa"))
	waitLAN(t, iface, 1, 1)
	return ns, iface, m0, m1
}
