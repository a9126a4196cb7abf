// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

// TestNonRootNetRaw records what Kubernetes gives a non-root container that
// adds NET_RAW: the kernel clears its permitted and effective capabilities at
// execve (Kubernetes sets no ambient capabilities), which is why bridge
// members run as root with only NET_RAW (docs/bridge.md). The pod runs the
// cluster's pause image, which only sleeps.
func TestNonRootNetRaw(t *testing.T) {
	ns := e2e.NewNamespace(t, "caps")
	e2e.Apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: nonroot-netraw, namespace: %s}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
  containers:
  - name: pause
    image: localhost/hubfleet/pause:dev
    imagePullPolicy: Never
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_RAW]}
`, ns))
	p := e2e.WaitPod(t, ns, "nonroot-netraw", 120*time.Second, "running", func(p e2e.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].ContainerID != "" && p.Status.Phase == "Running"
	})
	caps, uid := capEff(t, containerPID(t, p.Status.ContainerStatuses[0].ContainerID))
	prm := capLine(t, containerPID(t, p.Status.ContainerStatuses[0].ContainerID), "CapBnd:")
	e2e.Record(t, "non-root (uid %s) container adding NET_RAW: CapEff %s, CapBnd %s", uid, caps, prm)
	if caps != "0000000000000000" {
		t.Logf("this runtime gives a non-root container effective capabilities (%s): bridge members could run non-root here", caps)
	}
}
