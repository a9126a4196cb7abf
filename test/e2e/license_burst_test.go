// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestLicenseBurstOnDynamicHub (issue #16 item 9): a license of 5 split over
// 3 members, and 6 clients (`--no-retry`) connecting at the same instant to
// one dynamic hub, whose every session lands on its owner. The owner borrows
// the other members' idle licenses (pkg/member/cluster/loans.go): 5 connect
// at once, and the 6th is refused saying the cluster's total is in use.
func TestLicenseBurstOnDynamicHub(t *testing.T) {
	const clients, licenses = 6, 5
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:           []e2e.HubSpec{{Name: "burst"}},
		Users:          map[string]string{"user": "user-pw"},
		ClientLicenses: licenses,
	})
	waitAllocations(t, c, licenses)
	cls := make([]*e2e.Client, clients)
	for i := range cls {
		cls[i] = e2e.PrepareClient(t, fmt.Sprintf("B%02d", i), e2e.ClientOptions{Cluster: c, Hub: "burst", User: "user", NoRetry: true})
	}
	start := time.Now()
	launchAndSettle(t, cls)
	settled := time.Since(start)
	var connected, refused []*e2e.Client
	for _, cl := range cls {
		if cl.Exited() {
			refused = append(refused, cl)
			if code := cl.Code(); code != 7 || !strings.Contains(cl.Output(), "every client connection license of the cluster is in use") {
				t.Errorf("client %s exited %d, want 7 saying the cluster's licenses are all in use:\n%s", cl.Name, code, cl.Output())
			}
			continue
		}
		connected = append(connected, cl)
	}
	if len(connected) != licenses {
		st, _ := e2e.KubectlErr("get", "connectionlicense", "-n", c.Namespace, c.Name, "-o",
			`jsonpath=clients {.status.clients}; allocations {.status.allocations}`)
		t.Fatalf("%d of %d clients connected at once on a license of %d; license status: %s", len(connected), clients, licenses, st)
	}
	e2e.Eventually(t, 30*time.Second, "members report 5 client sessions of the hub", func() (bool, error) {
		n, err := leaseSessions(c, "burst")
		return n == licenses, fmt.Errorf("%d sessions (%v)", n, err)
	})
	e2e.Record(t, "license of %d over %d members, %d clients at once on one dynamic hub: %d admitted, %d refused (exit 7), settled in %.2fs; refusal: %s",
		licenses, c.Members, clients, len(connected), len(refused), settled.Seconds(), firstLine(cls, "license exhausted"))
}
