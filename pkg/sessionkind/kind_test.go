// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package sessionkind

import "testing"

func TestKind(t *testing.T) {
	for _, c := range []struct {
		k     Kind
		valid bool
		s     string
	}{{Client, true, "client"}, {Bridge, true, "bridge"}, {0, false, "kind 0"}, {7, false, "kind 7"}} {
		if c.k.Valid() != c.valid || c.k.String() != c.s {
			t.Errorf("Kind(%d): Valid %v String %q, want %v %q", uint8(c.k), c.k.Valid(), c.k.String(), c.valid, c.s)
		}
	}
	// Per-kind arrays index by the kind; the wire bytes must fit.
	var a [N]int
	a[Client]++
	a[Bridge]++
}
