// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"runtime"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

func TestDHCPFlag(t *testing.T) {
	linux := runtime.GOOS == "linux"
	for _, tc := range []struct {
		name    string
		set     []string // values given to --dhcp, in order
		kind    sessionkind.Kind
		address string
		want    bool
		err     bool
	}{
		{"client without address", nil, sessionkind.Client, "", linux, false},
		{"client with address", nil, sessionkind.Client, "10.0.0.1/24", false, false},
		{"asked for", []string{"true"}, sessionkind.Client, "", true, false},
		{"turned off", []string{"false"}, sessionkind.Client, "", false, false},
		{"both", []string{"true"}, sessionkind.Client, "10.0.0.1/24", false, true},
		{"bridge", nil, sessionkind.Bridge, "", false, false},
	} {
		var b optBool
		for _, v := range tc.set {
			if err := b.Set(v); err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.resolve(tc.kind, tc.address)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: got %v, %v; want %v, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}
