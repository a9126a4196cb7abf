// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

import (
	"fmt"
	"testing"
)

func fleet(members int) []Member {
	ms := make([]Member, members)
	for i := range ms {
		ms[i] = Member{Name: fmt.Sprintf("member-%03d", i), Ready: true, Weight: 100 + 100*(i%2), MaxSessions: 5000}
	}
	return ms
}

func newHubs(n int) []Hub {
	hs := make([]Hub, n)
	for i := range hs {
		hs[i] = dyn(fmt.Sprintf("tenant-%03d/hub-%05d", i%300, i), "", 0)
	}
	return hs
}

// BenchmarkPlace10kHubs100Members is a fresh cluster (weights 100 and 200
// alternating) receiving every hub at once, the largest single decision the
// operator makes.
func BenchmarkPlace10kHubs100Members(b *testing.B) {
	s := Snapshot{Members: fleet(100), Hubs: newHubs(10000), MaxUnavailable: 1}
	b.ReportAllocs()
	for b.Loop() {
		Place(s)
	}
}

// BenchmarkReassign100Hubs is one member failing in a settled 10,000-hub
// cluster: 100 hubs move, 9,900 stay.
func BenchmarkReassign100Hubs(b *testing.B) {
	s := Snapshot{Members: fleet(100), Hubs: newHubs(10000), MaxUnavailable: 1}
	for i := range s.Members {
		s.Members[i].Weight = DefaultWeight // 100 hubs on every member
	}
	d := Place(s)
	for i := range s.Hubs {
		s.Hubs[i].Assigned = d.Dynamic[s.Hubs[i].Key]
		s.Hubs[i].Sessions = i % 7
	}
	s.Failed = []string{"member-042"}
	moved := len(Place(s).Moves)
	if moved != 100 {
		b.Fatalf("%d hubs move, want 100", moved)
	}
	b.ReportAllocs()
	for b.Loop() {
		Place(s)
	}
	b.ReportMetric(float64(moved), "moves")
}
