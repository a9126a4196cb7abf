// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package memberlease

import (
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	l := Load{Sessions: map[string]HubLoad{
		"b/hub":  {Client: 2, Bridge: 1},
		"a/hub":  {Client: 5},
		"a/idle": {},
	}}
	s := Encode(l)
	// Sorted keys and no zero entries: the same load always gives the same string.
	if want := `{"sessions":{"a/hub":{"client":5},"b/hub":{"client":2,"bridge":1}}}`; s != want {
		t.Fatalf("Encode = %s, want %s", s, want)
	}
	got, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(l) {
		t.Fatalf("round trip: got %+v, want %+v", got, l)
	}
	if c, b := got.Totals(); c != 7 || b != 1 {
		t.Fatalf("Totals = %d, %d; want 7, 1", c, b)
	}
}

func TestDecodeEmptyAndInvalid(t *testing.T) {
	for _, s := range []string{"", "{}", Encode(Load{})} {
		l, err := Decode(s)
		if err != nil || len(l.Sessions) != 0 {
			t.Errorf("Decode(%q) = %+v, %v; want empty load", s, l, err)
		}
	}
	for _, s := range []string{"{", `{"sessions":{"a/h":{"client":-1}}}`, `{"sessions":3}`} {
		if _, err := Decode(s); err == nil {
			t.Errorf("Decode(%q) accepted invalid input", s)
		}
	}
}

func TestNamesAndTiming(t *testing.T) {
	if LeaseName("c-member-0") != "c-member-0" {
		t.Error("Lease name must equal the pod name")
	}
	if Labels("c")[memberpod.LabelCluster] != "c" {
		t.Error("Labels must carry the cluster name")
	}
	r := time.Unix(100, 0)
	if got := Expiry(r, 6*time.Second); !got.Equal(time.Unix(106, 0)) {
		t.Errorf("Expiry = %v", got)
	}
	if RenewInterval(6*time.Second) != 2*time.Second {
		t.Error("renewal must be a third of the duration")
	}
}

func TestClaimed(t *testing.T) {
	name := "vpn-member-0"
	self, other := name, memberpod.ClaimPrefix+"vpn-member-1"
	claim := Claim{By: "vpn-member-1", Reason: "MemberDead", Message: "mesh link reset and connection refused"}
	for _, tc := range []struct {
		what   string
		holder *string
		ann    map[string]string
		want   bool
		by     string
	}{
		{"no holder", nil, nil, false, ""},
		{"held by the member", &self, nil, false, ""},
		{"claimed with the annotation", &other, map[string]string{memberpod.AnnotationClaim: EncodeClaim(claim)}, true, "vpn-member-1"},
		{"held by another name, no annotation", &other, nil, true, "vpn-member-1"},
	} {
		c, ok := Claimed(name, tc.holder, tc.ann)
		if ok != tc.want || c.By != tc.by {
			t.Errorf("%s: Claimed = %+v, %v; want claimed %v by %q", tc.what, c, ok, tc.want, tc.by)
		}
	}
}

// The allocation keeps its wire key "licences" for one more release (an
// operator of the previous release reads only that), and Decode reads both
// spellings so the next release can switch to "licenses".
func TestLicenseAllocationKeys(t *testing.T) {
	a := &Allocation{Client: 3, Bridge: 1}
	if got, want := Encode(Load{Licenses: a}), `{"licences":{"client":3,"bridge":1}}`; got != want {
		t.Errorf("Encode = %s, want %s (the key an operator of the previous release reads)", got, want)
	}
	for _, s := range []string{
		`{"licences":{"client":3,"bridge":1}}`,
		`{"licenses":{"client":3,"bridge":1}}`,
		`{"licenses":{"client":3,"bridge":1},"licences":{"client":3,"bridge":1}}`,
	} {
		l, err := Decode(s)
		if err != nil || l.Licenses == nil || *l.Licenses != *a {
			t.Errorf("Decode(%s) = %+v, %v; want allocation %+v", s, l.Licenses, err, *a)
		}
	}
	if _, err := Decode(`{"licenses":{"client":3,"bridge":1},"licences":{"client":2,"bridge":1}}`); err == nil {
		t.Error("Decode accepted two different allocations")
	}
	if l, err := Decode(`{"licences":{"client":-1,"bridge":1}}`); err == nil {
		t.Errorf("Decode accepted a negative allocation under the old key: %+v", l.Licenses)
	}
}

// Loans round-trip through the annotation; an empty one is left out and a
// negative one refused.
func TestLoadBorrowed(t *testing.T) {
	l := Load{Sessions: map[string]HubLoad{"ns/h": {Client: 1}}, Borrowed: map[string]HubLoad{"m-1": {Client: 2}, "m-2": {}}}
	got, err := Decode(Encode(l))
	if err != nil || got.Borrowed["m-1"].Client != 2 || len(got.Borrowed) != 1 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if !got.Equal(l) {
		t.Fatal("a load with its loans does not equal itself after a round trip")
	}
	if _, err := Decode(`{"borrowed":{"m-1":{"client":-1}}}`); err == nil {
		t.Fatal("a negative loan decoded")
	}
}

// What a member lent round-trips too; nothing lent is the same as no
// figure (an older member writes none), and a negative figure is refused.
func TestLoadLent(t *testing.T) {
	l := Load{Licenses: &Allocation{Client: 3}, Lent: &Allocation{Client: 2}}
	got, err := Decode(Encode(l))
	if err != nil || got.Lent == nil || got.Lent.Client != 2 || !got.Equal(l) {
		t.Fatalf("decoded %+v (lent %+v), %v", got, got.Lent, err)
	}
	if a, b := (Load{Lent: &Allocation{}}), (Load{}); !a.Equal(b) || Encode(a) != Encode(b) {
		t.Fatalf("nothing lent differs from no figure: %q vs %q", Encode(a), Encode(b))
	}
	if (Load{Lent: &Allocation{Bridge: 1}}).Equal(Load{}) {
		t.Fatal("a bridge license lent equals nothing lent")
	}
	if _, err := Decode(`{"lent":{"client":-1,"bridge":0}}`); err == nil {
		t.Fatal("a negative figure lent decoded")
	}
}
