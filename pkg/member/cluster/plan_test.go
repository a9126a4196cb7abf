// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// The plan is the whole desired state from one snapshot, with no clock and
// no client: these tests need no API server.

var planNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func planLease(name string, renewedAgo time.Duration, holder string) *coordinationv1.Lease {
	rt := metav1.NewMicroTime(planNow.Add(-renewedAgo))
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: memberlease.LeaseName(name)},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &rt},
	}
}

func planHub(name string, typ vpnv1alpha1.HubType, on ...string) *vpnv1alpha1.VirtualHub {
	h := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	h.Spec.ClusterRef.Name, h.Spec.Type = "vpn", typ
	if typ == vpnv1alpha1.HubStatic {
		for _, m := range on {
			h.Status.Instances = append(h.Status.Instances, vpnv1alpha1.HubInstance{Member: m, Ready: true})
		}
	} else if len(on) > 0 {
		h.Status.AssignedMember = on[0]
	}
	return h
}

// planFixture: member vpn-member-0 of a three-member cluster; member 2
// stopped renewing 4 s ago (Lease 3 s) and holds the dynamic hub "gone".
func planFixture(self string) (*planner, *snapshot) {
	id := &Identity{Cluster: "vpn", Name: self, Namespace: "ns", LeaseDuration: 3 * time.Second}
	p := &planner{id: id, interval: time.Second, peerAddr: func(m, ip string) string { return ip + ":1" + m[len(m)-1:] }}
	vc := &vpnv1alpha1.VPNCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vpn"}}
	vc.Spec.Members = 3
	for i, ip := range []string{"10.0.0.1", "10.0.0.2", ""} {
		vc.Status.Members = append(vc.Status.Members, vpnv1alpha1.MemberStatus{Name: memberpod.MemberName("vpn", i), PodIP: ip, Ready: ip != ""})
	}
	s := &snapshot{
		now: planNow, cluster: vc,
		hubs: []*vpnv1alpha1.VirtualHub{
			planHub("mine", vpnv1alpha1.HubDynamic, "vpn-member-0"),
			planHub("gone", vpnv1alpha1.HubDynamic, "vpn-member-2"),
			planHub("lan", vpnv1alpha1.HubStatic, "vpn-member-0", "vpn-member-1"),
		},
		leases: map[string]*coordinationv1.Lease{
			memberlease.LeaseName("vpn-member-0"): planLease("vpn-member-0", 0, "vpn-member-0"),
			memberlease.LeaseName("vpn-member-1"): planLease("vpn-member-1", 500*time.Millisecond, "vpn-member-1"),
			memberlease.LeaseName("vpn-member-2"): planLease("vpn-member-2", 4*time.Second, "vpn-member-2"),
		},
		secret: func(string, string) (*corev1.Secret, bool) { return nil, true },
	}
	return p, s
}

func cfgHubs(c *member.Config) []string {
	var out []string
	for _, h := range c.Hubs {
		out = append(out, h.Name)
	}
	return out
}

func TestPlanServesRoutesAndActs(t *testing.T) {
	p, s := planFixture("vpn-member-0")
	got := p.makePlan(s)
	if h := cfgHubs(got.config.cfg); !slices.Equal(h, []string{"ns/lan", "ns/mine"}) {
		t.Errorf("served %v, want the static instance and the dynamic hub placed here", h)
	}
	if !got.static["ns/lan"] || len(got.static) != 1 {
		t.Errorf("static hubs to attach %v, want ns/lan", got.static)
	}
	// Peers: the members with a pod IP, not self, at the address PeerAddr gives.
	if want := map[string]string{"vpn-member-1": "10.0.0.2:11"}; len(got.view.peers) != 1 || got.view.peers["vpn-member-1"] != want["vpn-member-1"] {
		t.Errorf("mesh peers %v, want %v", got.view.peers, want)
	}
	if got.view.routes.dynamic["ns/gone"] != "vpn-member-2" || !got.view.routes.known["ns/lan"] {
		t.Errorf("routes %+v do not follow the hubs' status", got.view.routes)
	}
	// The first live member by name acts on the expired peer at once.
	if !slices.Equal(got.failover.due.hubs, []string{"vpn-member-2"}) {
		t.Errorf("failover acts on %v, want vpn-member-2", got.failover.due)
	}
	// The next change without an event: member 1's expiry (2.5 s), a little after.
	if want := planNow.Add(2500*time.Millisecond + 20*time.Millisecond); !got.wake.Equal(want) {
		t.Errorf("wake %v, want %v", got.wake, want)
	}
}

func TestPlanFencedServesNoDynamicHubAndMovesNothing(t *testing.T) {
	p, s := planFixture("vpn-member-0")
	s.fenced = true
	got := p.makePlan(s)
	if h := cfgHubs(got.config.cfg); !slices.Equal(h, []string{"ns/lan"}) {
		t.Errorf("fenced member serves %v, want only the static hub", h)
	}
	if !got.failover.due.empty() {
		t.Errorf("a fenced member acts on %v: it cannot vouch for its view", got.failover.due)
	}
}

func TestPlanIsPure(t *testing.T) {
	p, s := planFixture("vpn-member-0")
	a, b := p.makePlan(s), p.makePlan(s)
	if !slices.Equal(cfgHubs(a.config.cfg), cfgHubs(b.config.cfg)) || !a.wake.Equal(b.wake) || !slices.Equal(a.failover.due.hubs, b.failover.due.hubs) {
		t.Errorf("two plans of one snapshot differ: %+v / %+v", a, b)
	}
}

func TestDecideFailoverRanksAndCertificates(t *testing.T) {
	hubs := []*vpnv1alpha1.VirtualHub{planHub("h", vpnv1alpha1.HubDynamic, "m-3")}
	expiry := planNow.Add(-100 * time.Millisecond)
	peers := func(p3 peerState) []peerState {
		return []peerState{{name: "m-0", live: true}, {name: "m-1", live: true}, {name: "m-2", live: true}, p3}
	}
	expired := peerState{name: "m-3", failed: true, reason: ReasonLeaseExpired, since: expiry}
	id := func(self string) *Identity { return &Identity{Cluster: "vpn", Namespace: "ns", Name: self} }

	for _, tc := range []struct {
		name, self string
		p3         peerState
		act        bool
		due        time.Time
	}{
		{"first live member acts at once on an expiry", "m-0", expired, true, time.Time{}},
		{"second waits one interval", "m-1", expired, false, expiry.Add(time.Second)},
		{"third waits two", "m-2", expired, false, expiry.Add(2 * time.Second)},
		{"a death certificate is acted on at once whatever the rank", "m-2",
			peerState{name: "m-3", failed: true, reason: ReasonMemberDead, since: planNow}, true, time.Time{}},
		{"a peer claimed by another is left to it", "m-0",
			peerState{name: "m-3", failed: true, reason: ReasonLeaseExpired, since: expiry, claim: &memberlease.Claim{By: "m-1"}}, false, expiry.Add(2 * time.Second)},
		{"the claimer itself goes on", "m-1",
			peerState{name: "m-3", failed: true, reason: ReasonLeaseExpired, since: expiry.Add(-time.Second), claim: &memberlease.Claim{By: "m-1"}}, true, time.Time{}},
	} {
		act, due := decideFailover(id(tc.self), peers(tc.p3), hubs, time.Second, planNow)
		if (len(act.hubs) == 1) != tc.act || !due.Equal(tc.due) {
			t.Errorf("%s: act %v due %v, want act=%v due %v", tc.name, act, due, tc.act, tc.due)
		}
	}
	// A failed peer that holds no dynamic hub has nothing to move.
	if act, due := decideFailover(id("m-0"), peers(expired), nil, time.Second, planNow); !act.empty() || !due.IsZero() {
		t.Errorf("nothing to move, yet act %v due %v", act, due)
	}
}

func TestLeaseTriggers(t *testing.T) {
	o := planLease("m-1", time.Second, "m-1")
	renewed := planLease("m-1", 0, "m-1")
	claimed := planLease("m-1", time.Second, memberpod.ClaimPrefix+"m-0")
	if leaseTriggers(o, renewed) {
		t.Error("a renewal triggers a pass; only its expiry (a timer) matters")
	}
	if !leaseTriggers(o, claimed) {
		t.Error("a claim does not trigger a pass")
	}
}

// A failed peer's local bridge is left to the operator for bridgeGrace,
// even when its dynamic hubs move at once on a death certificate.
func TestDecideFailoverBridgeGrace(t *testing.T) {
	dyn := planHub("h", vpnv1alpha1.HubDynamic, "m-1")
	lan := planHub("lan", vpnv1alpha1.HubStatic, "m-0", "m-1")
	lan.Spec.LocalBridge = &vpnv1alpha1.LocalBridgeSpec{Interface: "eth1"}
	lan.Status.LocalBridge = "m-1"
	hubs := []*vpnv1alpha1.VirtualHub{dyn, lan}
	id := &Identity{Cluster: "vpn", Namespace: "ns", Name: "m-0"}
	dead := func(ago time.Duration) []peerState {
		return []peerState{{name: "m-0", live: true}, {name: "m-1", failed: true, reason: ReasonMemberDead, since: planNow.Add(-ago)}}
	}
	due, next := decideFailover(id, dead(100*time.Millisecond), hubs, time.Second, planNow)
	if !slices.Equal(due.hubs, []string{"m-1"}) || len(due.singletons) != 0 || !next.Equal(planNow.Add(900*time.Millisecond)) {
		t.Errorf("just dead: due %+v next %v; want the hubs now, the bridge at +900ms", due, next)
	}
	if due, _ := decideFailover(id, dead(bridgeGrace), hubs, time.Second, planNow); !slices.Equal(due.singletons, []string{"m-1"}) {
		t.Errorf("after the grace: due %+v, want the bridge", due)
	}
}

// A member restarted in a new pod: its Lease names its new IP before the
// operator reports it. Peers dial the new address, and a death certificate
// about the old one does not make it dead.
func TestRestartedMemberByLeaseIP(t *testing.T) {
	p, s := planFixture("vpn-member-0")
	l := s.leases[memberlease.LeaseName("vpn-member-1")]
	l.Annotations = map[string]string{memberpod.AnnotationPodIP: "10.0.0.9"}
	got := p.makePlan(s)
	if a := got.view.peers["vpn-member-1"]; a != "10.0.0.9:11" {
		t.Errorf("vpn-member-1 dialled at %q, want its Lease's new IP", a)
	}
	s.dead = map[string]deathCert{"vpn-member-1": {at: planNow, addr: "10.0.0.2:8444", msg: "refused"}}
	peers, _ := judgePeers(judgeInputs{self: "vpn-member-0", names: []string{"vpn-member-0", "vpn-member-1"}, leases: s.leases, dead: s.dead, duration: 3 * time.Second, now: planNow})
	if !peers[1].live {
		t.Errorf("a restarted member judged %+v on a death certificate about its old address", peers[1])
	}
	s.dead["vpn-member-1"] = deathCert{at: planNow, addr: "10.0.0.9:8444", msg: "refused"}
	peers, _ = judgePeers(judgeInputs{self: "vpn-member-0", names: []string{"vpn-member-0", "vpn-member-1"}, leases: s.leases, dead: s.dead, duration: 3 * time.Second, now: planNow})
	if !peers[1].failed || peers[1].reason != ReasonMemberDead {
		t.Errorf("a death certificate about the Lease's own address not taken: %+v", peers[1])
	}
}

// A member whose container restarted (same pod, same IP) renews again: a
// death certificate from before that renewal is about the old process.
func TestCertificateBeforeARestartIsVoid(t *testing.T) {
	_, s := planFixture("vpn-member-0")
	names := []string{"vpn-member-0", "vpn-member-1"}
	judge := func(certAgo time.Duration) peerState {
		dead := map[string]deathCert{"vpn-member-1": {at: planNow.Add(-certAgo), addr: "10.0.0.2:8444", msg: "refused"}}
		peers, _ := judgePeers(judgeInputs{self: "vpn-member-0", names: names, leases: s.leases, dead: dead, duration: 3 * time.Second, now: planNow})
		return peers[1]
	}
	// vpn-member-1 renewed 500 ms ago.
	if p := judge(5 * time.Second); !p.live {
		t.Errorf("a certificate 5 s old, before the member's renewal 0.5 s ago, condemned it: %+v", p)
	}
	if p := judge(time.Second); !p.failed {
		t.Errorf("a certificate 1 s old (renewal 0.5 s ago within the clock allowance) not taken: %+v", p)
	}
}
