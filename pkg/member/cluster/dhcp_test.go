// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/dhcp"
	"github.com/hubfleet/hubfleet/pkg/member"
)

// A Dynamic hub's spec.dhcp reaches the member config; a Static hub's does
// not (its one server runs outside the configuration, on the member its
// status names: dhcpSpecs), and is not reported as a problem; a pool
// written past the CRD's checks is left out, not the hub.
func TestDesiredCopiesDHCP(t *testing.T) {
	id := &Identity{Cluster: "c", Name: "m-0", Namespace: "ns"}
	pool := &vpnv1alpha1.DHCPSpec{Prefix: "10.8.0.0/24", RangeStart: "10.8.0.10", RangeEnd: "10.8.0.20"}
	bad := &vpnv1alpha1.DHCPSpec{Prefix: "10.8.0.0/24", RangeStart: "10.8.0.30", RangeEnd: "10.8.0.20"}
	vh := func(name string, typ vpnv1alpha1.HubType, d *vpnv1alpha1.DHCPSpec) *vpnv1alpha1.VirtualHub {
		h := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		h.Spec.ClusterRef.Name, h.Spec.Type, h.Spec.DHCP = "c", typ, d
		h.Status.AssignedMember = "m-0"
		h.Status.Instances = []vpnv1alpha1.HubInstance{{Member: "m-0", Ready: true}}
		return h
	}
	hubs := []*vpnv1alpha1.VirtualHub{
		vh("dyn", vpnv1alpha1.HubDynamic, pool), vh("static", vpnv1alpha1.HubStatic, pool), vh("broken", vpnv1alpha1.HubDynamic, bad),
		vh("static-broken", vpnv1alpha1.HubStatic, bad),
	}
	r := desired(id, member.Config{}, inputs{hubs: hubs, secret: func(string, string) (*corev1.Secret, bool) { return nil, true }})
	got := map[string]*vpnv1alpha1.DHCPSpec{}
	for _, h := range r.cfg.Hubs {
		got[h.Name] = h.DHCP
	}
	if len(got) != 4 || got["ns/dyn"] != pool || got["ns/static"] != nil || got["ns/broken"] != nil || got["ns/static-broken"] != nil {
		t.Fatalf("hubs and their dhcp: %v", got)
	}
	all := strings.Join(r.problems, "\n")
	for _, want := range []string{
		"hub ns/broken: dhcp: rangeStart 10.8.0.30 is not below rangeEnd 10.8.0.20",
		"hub ns/static-broken: dhcp: rangeStart 10.8.0.30 is not below rangeEnd 10.8.0.20",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not say %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "ns/static:") {
		t.Errorf("a static hub's valid pool is reported as a problem:\n%s", all)
	}
	if err := r.cfg.Validate(); err != nil && strings.Contains(err.Error(), "dhcp") {
		t.Fatalf("the computed config's dhcp is refused by the member: %v", err)
	}
	specs := dhcpSpecs(id, hubs)
	if len(specs) != 1 || specs[0].hub != "ns/static" || specs[0].arg != pool {
		t.Fatalf("static hubs' DHCP servers: %+v, want ns/static's only", specs)
	}
}

var staticPool = &vpnv1alpha1.DHCPSpec{Prefix: "10.20.0.0/24", RangeStart: "10.20.0.10", RangeEnd: "10.20.0.200", LeaseSeconds: 3600}

// dhcpStatus is the status the operator writes for a static hub on both
// members with its DHCP server on member, activated for container or
// released.
func dhcpStatus(member string, active bool, container string) vpnv1alpha1.VirtualHubStatus {
	c := metav1.Condition{Type: vpnv1alpha1.ConditionDHCPServer, Status: metav1.ConditionTrue, Reason: "Serving",
		Message: "member " + member + " serves DHCP for 10.20.0.0/24 from 10.20.0.10 (container " + container + ")", LastTransitionTime: metav1.Now()}
	if !active {
		c.Status, c.Reason = metav1.ConditionFalse, "DHCPServerReleasing"
	}
	return vpnv1alpha1.VirtualHubStatus{
		Instances:  []vpnv1alpha1.HubInstance{{Member: "vpn-member-0", Ready: true}, {Member: "vpn-member-1", Ready: true}},
		DHCPServer: member, Conditions: []metav1.Condition{c},
	}
}

// dhcpClient speaks DHCP through a frameClient and keeps every reply it
// receives, so a test can count who answered.
type dhcpClient struct {
	c       *frameClient
	mac     [6]byte
	xid     uint32
	replies map[dhcp.MessageType]int
}

// exchange sends m (stamped with the client's MAC and a new transaction)
// until a reply of type want arrives, and returns it. dst is the server for
// a unicast renewal (invalid: broadcast).
func (d *dhcpClient) exchange(t *testing.T, m *dhcp.Message, dst netip.Addr, dstMAC [6]byte, want dhcp.MessageType) *dhcp.Message {
	t.Helper()
	d.xid++
	m.Op, m.XID, m.CHAddr = dhcp.OpRequest, d.xid, d.mac
	var got *dhcp.Message
	eventually(t, 15*time.Second, fmt.Sprintf("%s: %s answered by %s", d.c.name, m.Type, want), func() error {
		d.c.send(t, dhcp.ClientFrame(nil, m, m.CIAddr, dst, dstMAC))
		deadline := time.After(time.Second) // the server probes 250 ms before offering
		for {
			select {
			case f := <-d.c.rx:
				r, _, ok := dhcp.ParseReply(f, d.mac, d.xid)
				if !ok {
					continue
				}
				d.replies[r.Type]++
				if r.Type == want {
					got = r
					return nil
				}
				return fmt.Errorf("got %s (%s)", r.Type, r.Text)
			case <-deadline:
				return fmt.Errorf("no reply")
			}
		}
	})
	return got
}

// bind gets an address: DISCOVER, OFFER, REQUEST, ACK.
func (d *dhcpClient) bind(t *testing.T) netip.Addr {
	t.Helper()
	offer := d.exchange(t, &dhcp.Message{Type: dhcp.Discover}, netip.Addr{}, [6]byte{}, dhcp.Offer)
	ack := d.exchange(t, &dhcp.Message{Type: dhcp.Request, RequestedIP: offer.YIAddr, ServerID: offer.ServerID}, netip.Addr{}, [6]byte{}, dhcp.Ack)
	if ack.YIAddr != offer.YIAddr {
		t.Fatalf("%s: offered %s, acknowledged %s", d.c.name, offer.YIAddr, ack.YIAddr)
	}
	return ack.YIAddr
}

// renew asks the server at its address to extend addr (RFC 2131 RENEWING).
func (d *dhcpClient) renew(t *testing.T, addr netip.Addr, hubName string) *dhcp.Message {
	t.Helper()
	return d.exchange(t, &dhcp.Message{Type: dhcp.Request, CIAddr: addr}, netip.MustParseAddr(staticPool.RangeStart), dhcp.MACFor(hubName), dhcp.Ack)
}

// dhcpReplies reads hubfleet_server_dhcp_replies_total{type} of hub from
// r's metrics; ok is false when r exports no series for it (no server).
func dhcpReplies(t *testing.T, r *runner, ns, name, typ string) (n float64, ok bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(member.NewCollector(r.m.Server(), member.MetricsOptions{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hubfleet_server_dhcp_replies_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["hub_namespace"] == ns && l["hub"] == name && l["type"] == typ {
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

func serving(r *runner) []string {
	s := r.m.ServingDHCP()
	slices.Sort(s)
	return s
}

// Two members serve a static hub with spec.dhcp: only the one the status
// names runs the server, and a client at the other member gets its address
// across the mesh from it — every reply the client sees was counted by the
// holder, and the other member has no server to answer with. When the
// holder's process dies with no operator running, the surviving member
// moves the server to itself (status written by the member) and the
// client's renewal of its address succeeds there: the new server learns
// the lease it had no record of, and does not give that address to another
// client. The server's member reports the pool's use in the hub's status.
func TestStaticHubDHCPOneServer(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	create(t, &vpnv1alpha1.VirtualHub{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp"},
		Spec: vpnv1alpha1.VirtualHubSpec{
			ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, Type: vpnv1alpha1.HubStatic,
			Users: &vpnv1alpha1.UsersSpec{SecretName: "users"}, DHCP: staticPool.DeepCopy(),
		},
	})
	hubName := ns + "/corp"
	// Released at start, so neither process finds an activation it would
	// refuse; activated for vpn-member-1 once both run.
	setStatus(t, ns, "corp", dhcpStatus("vpn-member-1", false, "aaa"))
	m0, m1, _ := meshPair(t, ns)
	renewedAndServing(t, m0, hubName)
	renewedAndServing(t, m1, hubName)
	if got := append(serving(m0), serving(m1)...); len(got) != 0 {
		t.Fatalf("a DHCP server runs while released: %v", got)
	}
	setStatus(t, ns, "corp", dhcpStatus("vpn-member-1", true, "bbb"))
	eventually(t, 15*time.Second, "the holder alone serves DHCP", func() error {
		if a, b := serving(m0), serving(m1); len(a) != 0 || !slices.Equal(b, []string{hubName}) {
			return fmt.Errorf("m0 serves %v, m1 serves %v", a, b)
		}
		return nil
	})

	// A client at the non-holder gets an address from the holder.
	c0 := &dhcpClient{c: m0.frameLogin(t, hubName, "alice", "c0@m0"), mac: [6]byte{2, 0, 0, 0, 0, 1}, replies: map[dhcp.MessageType]int{}}
	addr := c0.bind(t)
	if !netip.MustParsePrefix(staticPool.Prefix).Contains(addr) {
		t.Fatalf("leased %s outside the pool", addr)
	}
	if _, ok := dhcpReplies(t, m0, ns, "corp", "offer"); ok {
		t.Fatal("the non-holder member has a DHCP server for the hub")
	}
	offers, _ := dhcpReplies(t, m1, ns, "corp", "offer")
	acks, _ := dhcpReplies(t, m1, ns, "corp", "ack")
	// A second server would have put its own OFFER and ACK on the segment.
	if got := c0.replies; float64(got[dhcp.Offer]) != offers || float64(got[dhcp.Ack]) != acks || acks != 1 {
		t.Fatalf("client saw %d offers and %d acks; the holder sent %v and %v", got[dhcp.Offer], got[dhcp.Ack], offers, acks)
	}

	// The holder reports the pool's use in the hub's status.
	poolUse(t, ns, "vpn-member-1", 1)

	// The holder's process dies; no operator runs. The survivor claims its
	// Lease, moves the server to itself and starts it.
	died := time.Now()
	m1.stop()
	eventually(t, 20*time.Second, "the survivor serves DHCP", func() error {
		if a := serving(m0); !slices.Equal(a, []string{hubName}) {
			return fmt.Errorf("m0 serves %v", a)
		}
		return nil
	})
	t.Logf("DHCP server up on the survivor %v after the holder died", time.Since(died).Round(time.Millisecond))
	st := hubStatus(t, ns, "corp")
	c := meta.FindStatusCondition(st.Conditions, vpnv1alpha1.ConditionDHCPServer)
	if st.DHCPServer != "vpn-member-0" || c == nil || c.Status != metav1.ConditionTrue ||
		!strings.Contains(c.Message, "moved from vpn-member-1 by member vpn-member-0") || !strings.Contains(c.Message, "(container unknown)") {
		t.Fatalf("status after the move: dhcpServer %q, DHCPServer %+v", st.DHCPServer, c)
	}

	// The client renews at the server's address (same IP and MAC on every
	// member) and keeps its address.
	ack := c0.renew(t, addr, hubName)
	if ack.YIAddr != addr {
		t.Fatalf("renewal after the move acknowledged %s, want %s", ack.YIAddr, addr)
	}
	if n, _ := dhcpReplies(t, m0, ns, "corp", "learned"); n != 1 {
		t.Fatalf("the moved server learned %v leases from renewals, want 1", n)
	}
	// Another client is not given the learned address.
	c1 := &dhcpClient{c: m0.frameLogin(t, hubName, "bob", "c1@m0"), mac: [6]byte{2, 0, 0, 0, 0, 2}, replies: map[dhcp.MessageType]int{}}
	if other := c1.bind(t); other == addr {
		t.Fatalf("the moved server leased %s, held by another client, again", addr)
	}
	poolUse(t, ns, "vpn-member-0", 2)
}

// poolUse waits until member's session report on hub corp says leases of
// the 190 addresses of staticPool are leased.
func poolUse(t *testing.T, ns, member string, leases int32) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%s reports %d leases", member, leases), func() error {
		for _, r := range hubStatus(t, ns, "corp").SessionReports {
			if r.Member == member {
				if r.DHCP == nil || r.DHCP.PoolAddresses != 190 || r.DHCP.Leases != leases {
					return fmt.Errorf("report %+v, dhcp %+v", r, r.DHCP)
				}
				return nil
			}
		}
		return fmt.Errorf("no report")
	})
}
