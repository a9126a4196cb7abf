// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestClusterUpAndPing: the operator deploys from config/default, a three-member
// cluster becomes Ready with its dynamic hub placed, and two clients that join the
// hub through the client Service's node port ping each other.
func TestClusterUpAndPing(t *testing.T) {
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "lab"}},
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"},
	})
	_, _, took := pingingPair(t, c, "lab")
	t.Logf("A pings B %v after both connected; hub on %s", took.Round(time.Millisecond), c.AssignedMember(t, "lab"))
}
