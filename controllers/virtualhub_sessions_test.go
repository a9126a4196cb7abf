// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// applySessions applies ids as member's session entries of the hub, as the
// member does (pkg/member/cluster/sessions.go: own field manager).
func applySessions(t *testing.T, ns, hub, member string, ids ...string) {
	t.Helper()
	now := metav1.Now()
	st := map[string]any{}
	if len(ids) > 0 {
		var list []vpnv1alpha1.HubSession
		for _, id := range ids {
			list = append(list, vpnv1alpha1.HubSession{ID: id, User: "u", Kind: "client", Member: member, Since: now, LastUpdated: now})
		}
		st["sessionList"] = list
		st["sessionReports"] = []vpnv1alpha1.SessionReport{{Member: member, Sessions: int32(len(ids)), Listed: int32(len(ids)), LastUpdated: now}}
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": vpnv1alpha1.GroupVersion.String(), "kind": "VirtualHub",
		"metadata": map[string]string{"namespace": ns, "name": hub}, "status": st,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: hub}}
	if err := k8s.Status().Patch(ctx(), h, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner("hubfleet-member/"+member), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
}

func listedIDs(t *testing.T, ns, hub string) string {
	h := get(t, &vpnv1alpha1.VirtualHub{}, ns, hub)
	var ids []string
	for _, s := range h.Status.SessionList {
		ids = append(ids, s.Member+":"+s.ID)
	}
	var reps []string
	for _, r := range h.Status.SessionReports {
		reps = append(reps, r.Member)
	}
	sort.Strings(ids)
	sort.Strings(reps)
	return strings.Join(ids, ",") + " reports " + strings.Join(reps, ",")
}

// The operator's status writes keep the members' session entries, drop
// those of a member that no longer holds the hub, and take no ownership of
// the rest: a member's later apply still removes its own.
func TestSessionEntriesAcrossOperatorWrites(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 2, nil)
	startMembers(t, cl)
	newHub(t, ns, "lan", cl, vpnv1alpha1.HubStatic)
	m0, m1 := memberName(cl, 0), memberName(cl, 1)
	eventually(t, wait, "static hub on both members", func() error {
		if s := get(t, &vpnv1alpha1.VirtualHub{}, ns, "lan"); len(s.Status.Instances) != 2 {
			return fmt.Errorf("instances %+v", s.Status.Instances)
		}
		return nil
	})
	applySessions(t, ns, "lan", m0, "a0", "b0")
	applySessions(t, ns, "lan", m1, "a1")
	both := m0 + ":a0," + m0 + ":b0," + m1 + ":a1 reports " + m0 + "," + m1

	// An operator write (sessions from the Lease load) keeps them.
	renewLease(t, cl, m0, time.Now(), `{"sessions":{"`+ns+`/lan":{"client":2}}}`)
	eventually(t, wait, "session count from the Lease", func() error {
		if got := get(t, &vpnv1alpha1.VirtualHub{}, ns, "lan").Status.Sessions; got != 2 {
			return fmt.Errorf("sessions %d", got)
		}
		return nil
	})
	if got := listedIDs(t, ns, "lan"); got != both {
		t.Fatalf("after an operator write: %s, want %s", got, both)
	}

	// m1 fails: the operator drops it from the hub, and its entries.
	setPodReady(t, ns, m1, false)
	want := m0 + ":a0," + m0 + ":b0 reports " + m0
	eventually(t, wait, "m1's entries dropped", func() error {
		if got := listedIDs(t, ns, "lan"); got != want {
			return fmt.Errorf("%s, want %s", got, want)
		}
		return nil
	})
	// m0 still owns its entries alone: its apply of one removes the other.
	applySessions(t, ns, "lan", m0, "a0")
	if got, want := listedIDs(t, ns, "lan"), m0+":a0 reports "+m0; got != want {
		t.Fatalf("after m0's apply: %s, want %s", got, want)
	}
	applySessions(t, ns, "lan", m0)
	if got, want := listedIDs(t, ns, "lan"), " reports "; got != want {
		t.Fatalf("after m0's empty apply: %q, want %q", got, want)
	}
}
