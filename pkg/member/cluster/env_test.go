// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// A member started outside its StatefulSet must say which variable is missing
// and that the operator sets it.
func TestIdentityFromEnvNamesMissingVariables(t *testing.T) {
	_, err := IdentityFromEnv("vpn", func(k string) string {
		if k == EnvLeaseDuration {
			return "zero"
		}
		return ""
	})
	if err == nil {
		t.Fatal("no error with an empty environment")
	}
	for _, want := range []string{EnvPodName, EnvPodNamespace, EnvTLSDir, EnvTicketKey, EnvPeerDir, EnvPeerName, EnvLeaseDuration + `="zero"`, "the operator sets it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// The member listens where the operator's pod template points its Service,
// mesh peers and readiness probe (pkg/memberpod).
func TestPortsMatchThePodContract(t *testing.T) {
	if Listen != ":"+strconv.Itoa(memberpod.PortVPN) || MeshPort != strconv.Itoa(memberpod.PortMesh) {
		t.Fatalf("member listens on %s and mesh %s; the pod template has vpn %d and mesh %d", Listen, MeshPort, memberpod.PortVPN, memberpod.PortMesh)
	}
}
