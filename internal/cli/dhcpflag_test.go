// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"runtime"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/client"
)

func TestDHCPFlag(t *testing.T) {
	linux := runtime.GOOS == "linux"
	for _, tc := range []struct {
		name    string
		set     []string // values given to --dhcp, in order
		kind    client.Kind
		address string
		want    bool
		err     bool
	}{
		{"client without address", nil, client.KindClient, "", linux, false},
		{"client with address", nil, client.KindClient, "10.0.0.1/24", false, false},
		{"asked for", []string{"true"}, client.KindClient, "", true, false},
		{"turned off", []string{"false"}, client.KindClient, "", false, false},
		{"both", []string{"true"}, client.KindClient, "10.0.0.1/24", false, true},
		{"bridge", nil, client.KindBridge, "", false, false},
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
