// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
)

// A hub's access list drops, at the hub's ingress, the frames of the sessions
// it names: bob's experimental-EtherType frames never reach alice while
// alice's reach bob; the drop is counted; a config without the rule lifts it
// for the running session at once; a list that does not compile is refused,
// naming the hub and the rule.
func TestAccessListFiltersAtIngress(t *testing.T) {
	exp := intstr.FromString("0x88b5") // the EtherType of eth()
	rule := v1alpha1.AccessRule{Name: "no-exp-from-bob", Action: v1alpha1.AccessDrop, EtherType: &exp, Users: []string{"bob"}}
	m := startMember(t, func(c *Config) { c.Hubs[0].AccessList = []v1alpha1.AccessRule{rule} })
	alice := m.connect(t, pw("alpha", "alice", "alice-pw"))
	bob := m.connect(t, pw("alpha", "bob", "bob-pw"))

	fromAlice := eth(broadcast, mac(1), "alice to all")
	alice.send(t, fromAlice)
	bob.expect(t, fromAlice)

	bob.send(t, eth(mac(1), mac(2), "dropped"), eth(broadcast, mac(2), "dropped too"))
	eventually(t, 5*time.Second, "two access-list drops counted", func() bool {
		return m.hubStats(t, "alpha").Switch.Drops.AccessList == 2
	})
	// Per rule in the metrics: the rule that dropped them, and nothing for
	// the default (Pass).
	web := httptest.NewServer(MetricsHandler(m.srv, MetricsOptions{}))
	defer web.Close()
	got := scrape(t, web.URL)
	if got["hubfleet_server_access_list_drops_total{hub=alpha,hub_namespace=,rule=no-exp-from-bob}"] != 2 {
		t.Fatalf("per-rule drops not exported: %v", got)
	}
	if v, ok := got["hubfleet_server_access_list_drops_total{hub=alpha,hub_namespace=,rule=(default)}"]; !ok || v != 0 {
		t.Fatalf("the default action's drops: %v (present %v), want 0", v, ok)
	}
	if _, ok := got["hubfleet_server_access_list_drops_total{hub=beta,hub_namespace=,rule=(default)}"]; ok {
		t.Fatal("a hub without an access list has access-list series")
	}
	select {
	case f := <-alice.rx:
		t.Fatalf("alice received %q from bob through a Drop rule", f[14:])
	case <-time.After(200 * time.Millisecond):
	}

	// The same config without the rule: bob's running session may send.
	cfg := baseConfig(t, m.dir)
	if err := m.srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	passes := eth(mac(1), mac(2), "after the rule went")
	bob.send(t, passes)
	alice.expect(t, passes)

	bad := baseConfig(t, m.dir)
	badPort := intstr.FromString("22")
	bad.Hubs[0].AccessList = []v1alpha1.AccessRule{{Name: "ssh", Action: v1alpha1.AccessDrop, DstPorts: &badPort}} // ports without tcp/udp
	err := m.srv.Apply(bad)
	if err == nil || !strings.Contains(err.Error(), "hubs[0].accessList") || !strings.Contains(err.Error(), "ssh") {
		t.Fatalf("Apply of a list with ports but no protocol: %v, want a refusal naming hubs[0].accessList and the rule", err)
	}
}
