// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package placement

// candidate is what the ranking looks at; BestMember and Place share it so a
// session and a hub are ranked by the same rule.
type candidate struct {
	name      string
	point     int
	instances int
	weight    int // effective, > 0
}

// better reports whether a ranks above b: higher point, then fewer hub
// instances per unit of weight, then name.
//
// The instance tie-break is scaled by weight (a member of weight 200 with two
// instances ties one of weight 100 with one) so that members which all start
// empty — equal points — still fill in proportion to their weight; with equal
// weights it is plain "fewer hub instances".
func better(a, b *candidate) bool {
	if a.point != b.point {
		return a.point > b.point
	}
	// a.instances/a.weight < b.instances/b.weight without division.
	l, r := a.instances*b.weight, b.instances*a.weight
	if l != r {
		return l < r
	}
	return a.name < b.name
}

// BestMember picks the member for a new session or hub: the highest Point,
// skipping unready members and full ones (point 0 or sessions ≥ MaxSessions);
// ties go to fewer hub instances per unit of weight (instances[name], a
// missing name counting 0), then to the smaller name. It returns false when
// no member is eligible. The caller leaves failed members out of members.
func BestMember(members []Member, instances map[string]int) (string, bool) {
	var best candidate
	found := false
	for i := range members {
		m := &members[i]
		if !m.Ready || full(m.Sessions, m.Weight, m.MaxSessions) {
			continue
		}
		c := candidate{
			name:      m.Name,
			point:     Point(m.Sessions, m.Weight, m.MaxSessions),
			instances: instances[m.Name],
			weight:    effectiveWeight(m.Weight),
		}
		if !found || better(&c, &best) {
			best, found = c, true
		}
	}
	return best.name, found
}
