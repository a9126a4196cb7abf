// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/dhcp"
)

var testDHCP = &v1alpha1.DHCPSpec{Prefix: "10.8.0.0/24", RangeStart: "10.8.0.10", RangeEnd: "10.8.0.20", Router: "10.8.0.1"}

// nextReply waits for the DHCP reply of transaction xid to mac, skipping
// other frames (the server's probes and announcements).
func (c *client) nextReply(t *testing.T, mac [6]byte, xid uint32) *dhcp.Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-c.rx:
			if m, _, ok := dhcp.ParseReply(f, mac, xid); ok {
				return m
			}
		case <-deadline:
			t.Fatalf("no DHCP reply to xid %d", xid)
		}
	}
}

// A hub with dhcp answers a session's DISCOVER and REQUEST through the
// switch, counts the lease in the member's metrics, and a hub without it
// has no server port; dropping dhcp from the config stops the server.
func TestDHCPServedOnHub(t *testing.T) {
	m := startMember(t, func(c *Config) { c.Hubs[0].DHCP = testDHCP })
	alice := m.connect(t, pw("alpha", "alice", "alice-pw"))
	me := mac(7)
	alice.send(t, dhcp.ClientFrame(nil, &dhcp.Message{Op: dhcp.OpRequest, XID: 1, CHAddr: me, Type: dhcp.Discover}, netip.Addr{}, netip.Addr{}, [6]byte{}))
	off := alice.nextReply(t, me, 1)
	if off.Type != dhcp.Offer || off.ServerID != netip.MustParseAddr("10.8.0.10") || len(off.Routers) != 1 {
		t.Fatalf("offer %+v", off)
	}
	alice.send(t, dhcp.ClientFrame(nil, &dhcp.Message{Op: dhcp.OpRequest, XID: 2, CHAddr: me, Type: dhcp.Request, ServerID: off.ServerID, RequestedIP: off.YIAddr}, netip.Addr{}, netip.Addr{}, [6]byte{}))
	if ack := alice.nextReply(t, me, 2); ack.Type != dhcp.Ack || ack.YIAddr != off.YIAddr {
		t.Fatalf("ack %+v", ack)
	}
	st := m.srv.dhcpStats()
	if len(st) != 1 || st["alpha"].InUse != 1 || st["alpha"].PoolSize != 10 {
		t.Fatalf("dhcp stats %+v, want alpha only with 1 of 10 in use", st)
	}
	ts := httptest.NewServer(MetricsHandler(m.srv, MetricsOptions{}))
	defer ts.Close()
	got := scrape(t, ts.URL)
	if got["hubfleet_server_dhcp_leases{hub=alpha,hub_namespace=}"] != 1 || got["hubfleet_server_dhcp_pool_addresses{hub=alpha,hub_namespace=}"] != 10 ||
		got["hubfleet_server_dhcp_replies_total{hub=alpha,hub_namespace=,type=ack}"] != 1 {
		t.Fatalf("metrics lack the pool's use: %v", got)
	}
	if _, ok := got["hubfleet_server_dhcp_leases{hub=beta,hub_namespace=}"]; ok {
		t.Fatal("a hub without dhcp has DHCP series")
	}
	if err := m.srv.Apply(baseConfig(t, m.dir)); err != nil {
		t.Fatal(err)
	}
	if st := m.srv.dhcpStats(); len(st) != 0 {
		t.Fatalf("dhcp still served after it left the config: %+v", st)
	}
}

func TestDHCPConfigRefusedNamesField(t *testing.T) {
	cfg := baseConfig(t, t.TempDir())
	bad := *testDHCP
	bad.RangeEnd, bad.Router = "10.9.0.20", "10.7.0.1"
	cfg.Hubs[1].DHCP = &bad
	err := cfg.Validate()
	for _, want := range []string{`hubs[1].dhcp.rangeEnd 10.9.0.20 is outside prefix 10.8.0.0/24`, `hubs[1].dhcp.router 10.7.0.1 is outside prefix`, `(hub "beta")`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate: %v, want %q", err, want)
		}
	}
}
