// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/event"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Session entries (status.sessionList, status.sessionReports) are written by
// the members serving them, by server-side apply (pkg/member/cluster/
// sessions.go). The operator's status is computed from scratch, so it
// carries them over, or its merge patch would delete them all; and it
// drops those of members no longer holding the hub — a member that died
// cannot remove its own. Removing needs no ownership: an update removes
// fields whatever manager applied them.

// keepServedSessions sets st's session entries to old's, less those of
// members st does not place the hub on.
func keepServedSessions(old, st *vpnv1alpha1.VirtualHubStatus) {
	serving := func(m string) bool {
		if m == st.AssignedMember {
			return m != ""
		}
		return slices.ContainsFunc(st.Instances, func(in vpnv1alpha1.HubInstance) bool { return in.Member == m })
	}
	st.SessionList = nil
	for _, s := range old.SessionList {
		if serving(s.Member) {
			st.SessionList = append(st.SessionList, s)
		}
	}
	st.SessionReports = nil
	for _, r := range old.SessionReports {
		if serving(r.Member) {
			st.SessionReports = append(st.SessionReports, r)
		}
	}
}

// sessionsEqual compares the session entries by identity: entries are only
// ever carried over or dropped here, never changed.
func sessionsEqual(a, b *vpnv1alpha1.VirtualHubStatus) bool {
	return slices.EqualFunc(a.SessionList, b.SessionList, func(x, y vpnv1alpha1.HubSession) bool { return x.ID == y.ID && x.Member == y.Member }) &&
		slices.EqualFunc(a.SessionReports, b.SessionReports, func(x, y vpnv1alpha1.SessionReport) bool { return x.Member == y.Member })
}

// notSessionsOnly passes hub updates that change more than the session
// entries and the disconnect annotation: members rewrite those every few
// seconds on a busy cluster, and nothing the VPNCluster reconciler computes
// depends on them.
func notSessionsOnly(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*vpnv1alpha1.VirtualHub)
	n, ok2 := e.ObjectNew.(*vpnv1alpha1.VirtualHub)
	if !ok1 || !ok2 {
		return true
	}
	return !vpnv1alpha1.SessionsOnlyChange(o, n)
}
