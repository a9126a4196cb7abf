// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"errors"

	"github.com/hubfleet/hubfleet/pkg/member"
)

// MetricsOptions are the cluster-mode parts of the member's metrics
// (member.MetricsHandler): live mesh links, the fencing state and readiness.
func (m *Member) MetricsOptions() member.MetricsOptions {
	return member.MetricsOptions{
		MeshLinks: func() int { return len(m.mesh.Peers()) },
		Fenced:    m.lease.appliedFence,
		Ready:     m.Ready,
	}
}

// Ready is the member's readiness (/readyz, the pod's readiness probe): it
// listens, and serves the current placement — not fenced, and not waiting
// to re-read the placement after its Lease expired. A member that cannot
// renew its Lease leaves the Service's endpoints, so reconnecting clients go
// to members that can, and the operator counts it failed as soon as the
// kubelet reports it, which for a frozen process (the probe times out) comes
// before the Lease expires.
func (m *Member) Ready() error {
	if !m.serving.Load() {
		return errors.New("not listening yet (waiting for the informers to sync)")
	}
	return m.lease.readiness()
}
