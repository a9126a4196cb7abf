package cluster

import "github.com/hubfleet/hubfleet/pkg/member"

// MetricsOptions are the cluster-mode parts of the member's metrics
// (member.MetricsHandler): live mesh links and the fencing state.
func (m *Member) MetricsOptions() member.MetricsOptions {
	return member.MetricsOptions{
		MeshLinks: func() int { return len(m.mesh.Peers()) },
		Fenced: func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.fenced
		},
	}
}
