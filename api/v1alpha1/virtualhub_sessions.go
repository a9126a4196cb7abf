// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package v1alpha1

import (
	"maps"
	"reflect"
)

// SessionsOnlyChange reports whether an update of a hub changed only what
// the session listing writes (status.sessionList and sessionReports, the
// disconnect annotation) besides the object's version: the members' loop and
// the operator's VPNCluster reconciler read none of it, and members rewrite
// it every few seconds on a busy cluster, so neither is woken for it
// (docs/sessions.md). An annotation map left empty counts as none.
func SessionsOnlyChange(o, n *VirtualHub) bool {
	return reflect.DeepEqual(withoutSessions(o), withoutSessions(n))
}

// withoutSessions is a shallow copy of h without what SessionsOnlyChange
// ignores; h is not changed.
func withoutSessions(h *VirtualHub) *VirtualHub {
	c := *h
	c.ResourceVersion, c.ManagedFields = "", nil
	c.Status.SessionList, c.Status.SessionReports = nil, nil
	if _, ok := c.Annotations[AnnotationDisconnect]; ok {
		c.Annotations = maps.Clone(c.Annotations)
		delete(c.Annotations, AnnotationDisconnect)
	}
	if len(c.Annotations) == 0 {
		c.Annotations = nil
	}
	return &c
}
