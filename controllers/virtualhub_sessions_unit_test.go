// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/event"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// The operator's computed status keeps the entries of members holding the
// hub and drops those of members it no longer places the hub on.
func TestKeepServedSessions(t *testing.T) {
	old := vpnv1alpha1.VirtualHubStatus{
		SessionList:    []vpnv1alpha1.HubSession{{ID: "1", Member: "m0"}, {ID: "2", Member: "m1"}, {ID: "3", Member: "gone"}},
		SessionReports: []vpnv1alpha1.SessionReport{{Member: "m0"}, {Member: "m1"}, {Member: "gone"}},
	}
	static := vpnv1alpha1.VirtualHubStatus{Instances: []vpnv1alpha1.HubInstance{{Member: "m0"}, {Member: "m1"}}}
	keepServedSessions(&old, &static)
	if len(static.SessionList) != 2 || static.SessionList[1].ID != "2" || len(static.SessionReports) != 2 {
		t.Errorf("static: %+v %+v", static.SessionList, static.SessionReports)
	}
	dynamic := vpnv1alpha1.VirtualHubStatus{AssignedMember: "m1"}
	keepServedSessions(&old, &dynamic)
	if len(dynamic.SessionList) != 1 || dynamic.SessionList[0].ID != "2" || len(dynamic.SessionReports) != 1 {
		t.Errorf("dynamic: %+v %+v", dynamic.SessionList, dynamic.SessionReports)
	}
	none := vpnv1alpha1.VirtualHubStatus{}
	keepServedSessions(&old, &none)
	if none.SessionList != nil || none.SessionReports != nil {
		t.Errorf("unplaced: %+v %+v", none.SessionList, none.SessionReports)
	}
	if sessionsEqual(&old, &static) || !sessionsEqual(&static, &static) {
		t.Error("sessionsEqual")
	}
}

func TestNotSessionsOnly(t *testing.T) {
	o := &vpnv1alpha1.VirtualHub{}
	o.Name, o.ResourceVersion = "h", "1"
	o.Status.AssignedMember = "m"
	n := o.DeepCopy()
	n.ResourceVersion = "2"
	n.Status.SessionList = []vpnv1alpha1.HubSession{{ID: "a"}}
	n.Annotations = map[string]string{vpnv1alpha1.AnnotationDisconnect: "a"}
	if notSessionsOnly(event.UpdateEvent{ObjectOld: o, ObjectNew: n}) {
		t.Error("a session-only update passed")
	}
	m := n.DeepCopy()
	m.Status.AssignedMember = "other"
	if !notSessionsOnly(event.UpdateEvent{ObjectOld: n, ObjectNew: m}) {
		t.Error("a placement change was dropped")
	}
}
