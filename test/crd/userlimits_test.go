// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package crd

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
)

const limitsHub = hub + "  clusterRef: {name: c}\n  userLimits:\n"

// limitsMemberAccepts converts what the API server would store as the
// member does and returns the member's verdict: the API server and a member
// must agree on what is valid.
func limitsMemberAccepts(t *testing.T, doc string) error {
	t.Helper()
	var vh v1alpha1.VirtualHub
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj(t, doc).Object, &vh); err != nil {
		t.Fatal(err)
	}
	_, _, err := member.UserLimitSettings(vh.Spec.UserLimits)
	return err
}

func TestUserLimitsAccepted(t *testing.T) {
	for name, spec := range map[string]string{
		"sessions only":   "    maxSessionsPerUser: 1",
		"rate only":       "    sessionRate: {bitsPerSecond: 100M}",
		"rate as integer": "    sessionRate: {bitsPerSecond: 1000000}",
		"binary suffix":   "    sessionRate: {bitsPerSecond: 10Mi, burstBytes: 256Ki}",
		"both":            "    maxSessionsPerUser: 3\n    sessionRate: {bitsPerSecond: 1G, burstBytes: 1Mi}",
		"extremes":        "    maxSessionsPerUser: 1000000\n    sessionRate: {bitsPerSecond: 1T, burstBytes: 1Gi}",
		"smallest":        "    sessionRate: {bitsPerSecond: 1M, burstBytes: 1500}",
	} {
		t.Run(name, func(t *testing.T) {
			doc := limitsHub + spec + "\n"
			if err := env.Client.Create(ctx(t), obj(t, doc), client.DryRunAll); err != nil {
				t.Fatalf("refused: %v", err)
			}
			if err := limitsMemberAccepts(t, doc); err != nil {
				t.Fatalf("accepted by the API server, refused by the member: %v", err)
			}
		})
	}
}

// TestUserLimitsRefused: each mistake is refused with a message that says
// what is wrong and how to write it, and the member's own check (a file-mode
// member) refuses it too.
func TestUserLimitsRefused(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"zero sessions", "    maxSessionsPerUser: 0", "maxSessionsPerUser"},
		{"rate too low", "    sessionRate: {bitsPerSecond: 500k}", "sessionRate.bitsPerSecond must be at least 1M (1 Mbit/s), written like 10M or 1G"},
		{"rate in millis", "    sessionRate: {bitsPerSecond: 100m}", "must be at least 1M"},
		{"rate too high", "    sessionRate: {bitsPerSecond: 2T}", "sessionRate.bitsPerSecond must be at most 1T"},
		{"burst too small", "    sessionRate: {bitsPerSecond: 10M, burstBytes: 100}", "sessionRate.burstBytes must be from 1500 (one full frame) to 1Gi bytes"},
		{"burst too large", "    sessionRate: {bitsPerSecond: 10M, burstBytes: 2Gi}", "sessionRate.burstBytes must be from 1500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := limitsHub + tc.spec + "\n"
			err := env.Client.Create(ctx(t), obj(t, doc), client.DryRunAll)
			if err == nil {
				t.Fatalf("accepted; want refusal with %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("refused for another reason: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("message %q does not say %q", err.Error(), tc.want)
			}
			if limitsMemberAccepts(t, doc) == nil {
				t.Fatal("refused by the API server but accepted by the member's check")
			}
		})
	}
	// Not a quantity at all: the schema's pattern refuses it before any rule.
	err := env.Client.Create(ctx(t), obj(t, limitsHub+"    sessionRate: {bitsPerSecond: fast}\n"), client.DryRunAll)
	if err == nil || !apierrors.IsInvalid(err) {
		t.Fatalf("bitsPerSecond: fast: %v, want refused as invalid", err)
	}
	if strings.Contains(err.Error(), "evaluating rule") {
		t.Fatalf("the rules fail on a value that is no quantity, burying the pattern's message: %v", err)
	}
}
