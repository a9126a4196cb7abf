// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/e2e"
)

// listed is `hubfleet sessions -o json` as a tenant.
func listed(t *testing.T, ns, hub string, as []string) ([]vpnv1alpha1.HubSession, error) {
	out, err := e2e.HubfleetAdmin("sessions", append(as, "-n", ns, hub, "-o", "json")...)
	if err != nil {
		return nil, err
	}
	var v struct {
		SessionList []vpnv1alpha1.HubSession `json:"sessionList"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("%w: %s", err, out)
	}
	return v.SessionList, nil
}

func byUser(list []vpnv1alpha1.HubSession, user string) *vpnv1alpha1.HubSession {
	for i := range list {
		if list[i].User == user {
			return &list[i]
		}
	}
	return nil
}

// TestSessionsListAndDisconnect: a tenant administrator (impersonated, with
// a Role on VirtualHubs and Secrets in the cluster's namespace only) lists
// the hub's sessions with `hubfleet sessions`, disconnects alice with
// `hubfleet disconnect` — told she will be back, and her client reconnects
// and pings again — and is refused in another namespace; removing bob from
// the users Secret ends his session and his client gives up (bad credentials).
func TestSessionsListAndDisconnect(t *testing.T) {
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:  []e2e.HubSpec{{Name: "lab"}},
		Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"},
	})
	a, b, _ := pingingPair(t, c, "lab")
	e2e.KubectlStdin(t, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: hub-admin, namespace: %[1]s}
rules:
- apiGroups: ["vpn.hubfleet.io"]
  resources: ["virtualhubs"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: hub-admins, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: hub-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: e2e-tenant-admins}
`, c.Namespace), "apply", "-f", "-")
	as := []string{"--as", "someone", "--as-group", "e2e-tenant-admins"}

	var alice, bob *vpnv1alpha1.HubSession
	took := e2e.Eventually(t, 30*time.Second, "both sessions listed with traffic", func() (bool, error) {
		list, err := listed(t, c.Namespace, "lab", as)
		if err != nil {
			return false, err
		}
		alice, bob = byUser(list, "alice"), byUser(list, "bob")
		return len(list) == 2 && alice != nil && bob != nil && alice.RxFrames > 0 && bob.RxFrames > 0, fmt.Errorf("listed %+v", list)
	})
	t.Logf("sessions listed with counters %v after the pair pinged (counters refresh every 30 s)", took.Round(time.Millisecond))
	member := c.AssignedMember(t, "lab")
	if alice.Member != member || alice.Kind != "client" || alice.Source == "" || alice.Since.IsZero() {
		t.Errorf("alice's entry %+v (hub on %s)", alice, member)
	}
	table, err := e2e.HubfleetAdmin("sessions", append(as, "-n", c.Namespace, "lab")...)
	if err != nil || !strings.Contains(table, alice.ID) || !strings.Contains(table, "RX BYTES/FRAMES") {
		t.Errorf("table: %v\n%s", err, table)
	}

	// Not in another namespace.
	if out, err := e2e.HubfleetAdmin("sessions", append(as, "-n", e2e.OperatorNamespace, "lab")...); err == nil || !strings.Contains(out, "you may not get VirtualHub") {
		t.Errorf("tenant listing in %s: %v\n%s", e2e.OperatorNamespace, err, out)
	}
	if out, err := e2e.HubfleetAdmin("disconnect", append(as, "-n", e2e.OperatorNamespace, "lab", alice.ID)...); err == nil || !strings.Contains(out, "you may not get VirtualHub") {
		t.Errorf("tenant disconnect in %s: %v\n%s", e2e.OperatorNamespace, err, out)
	}

	began := time.Now()
	out, err := e2e.HubfleetAdmin("disconnect", append(as, "-n", c.Namespace, "lab", alice.ID[:8])...)
	if err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	gone := time.Since(began)
	t.Logf("hubfleet disconnect took %v:\n%s", gone.Round(time.Millisecond), out)
	want := fmt.Sprintf("user alice's password is still in Secret %s/vpn-users: the client will reconnect", c.Namespace)
	if !strings.Contains(out, "session "+alice.ID+" (user alice") || !strings.Contains(out, want) {
		t.Errorf("disconnect said:\n%s\nwant %q", out, want)
	}
	if !strings.Contains(a.Output(), "disconnected by an administrator") {
		t.Errorf("client A did not report the reason; output:\n%s", a.Output())
	}
	e2e.Eventually(t, 30*time.Second, "alice back as a new session", func() (bool, error) {
		list, err := listed(t, c.Namespace, "lab", as)
		if err != nil {
			return false, err
		}
		s := byUser(list, "alice")
		return s != nil && s.ID != alice.ID, nil
	})
	a.PingUntil(t, 20*time.Second, b.Address)

	// Remove bob from the Secret: his session ends and he cannot come back.
	e2e.Kubectl(t, "-n", c.Namespace, "patch", "secret", "vpn-users", "--type=json", "-p", `[{"op":"remove","path":"/data/bob"}]`)
	if code := b.ExitCode(t, 60*time.Second); code != 3 {
		t.Errorf("client B exited %d, want 3 (bad credentials); output:\n%s", code, b.Output())
	}
	e2e.Eventually(t, 30*time.Second, "bob no longer listed", func() (bool, error) {
		list, err := listed(t, c.Namespace, "lab", as)
		return err == nil && byUser(list, "bob") == nil && byUser(list, "alice") != nil, err
	})
}
