// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package helm

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

func parsePort(s string, into *int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err == nil && n <= 0 {
		err = fmt.Errorf("node port %q", s)
	}
	*into = n
	return n, err
}

// checkMetrics reads both metrics endpoints through the API server's proxy, as
// docs/user-guide.md shows: the operator's Service (port name metrics) and a
// member pod's port 9090 (the API server's pod proxy takes a number, not a
// port name). The member holding the hub reports its two sessions.
func checkMetrics(t *testing.T, c *e2e.Cluster) {
	t.Helper()
	op := e2e.Kubectl(t, "get", "--raw", "/api/v1/namespaces/"+namespace+"/services/"+release+"-metrics:metrics/proxy/metrics")
	for _, want := range []string{
		`hubfleet_member_ready{cluster="demo",cluster_namespace="default"`,
		`hubfleet_license_total{cluster="demo",cluster_namespace="default",kind="client"} 50`,
	} {
		if !strings.Contains(op, want) {
			t.Errorf("operator metrics lack %s", want)
		}
	}
	owner := c.AssignedMember(t, sampleHub)
	want := `hubfleet_server_sessions{hub="lab",hub_namespace="default",kind="client"} 2`
	e2e.Eventually(t, 30*time.Second, "member "+owner+" metrics show the hub's two sessions", func() (bool, error) {
		out, err := e2e.KubectlErr("get", "--raw", "/api/v1/namespaces/"+sampleNS+"/pods/"+owner+":9090/proxy/metrics")
		if err != nil {
			return false, err
		}
		if !strings.Contains(out, want) {
			return false, fmt.Errorf("no %s in:\n%s", want, grep(out, "hubfleet_server_sessions"))
		}
		if !strings.Contains(out, `hubfleet_server_hub_frames_total{direction="in",hub="lab",hub_namespace="default"}`) {
			return false, fmt.Errorf("no frame counters for hub lab")
		}
		return true, nil
	})
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// failover deletes the member that holds the dynamic hub, as a user would
// watch it in docs/user-guide.md: the operator moves the hub to another
// member (status.lastReassignment, an Event), and the clients reconnect there.
func failover(t *testing.T, c *e2e.Cluster, a, b *e2e.Client) {
	t.Helper()
	from := c.AssignedMember(t, sampleHub)
	start := time.Now()
	e2e.DeletePod(t, sampleNS, from)
	var to string
	e2e.Eventually(t, 60*time.Second, "hub lab moved off "+from, func() (bool, error) {
		h := c.Hub(t, sampleHub)
		if h.AssignedMember == "" || h.AssignedMember == from || h.LastReassignment == nil || h.LastReassignment.From != from {
			return false, nil
		}
		to = h.AssignedMember
		return true, nil
	})
	moved := time.Since(start)
	a.PingUntil(t, 60*time.Second, b.Address)
	back := time.Since(start)
	events := e2e.Kubectl(t, "get", "events", "-n", sampleNS, "--field-selector", "involvedObject.kind=VirtualHub,involvedObject.name="+sampleHub)
	if !strings.Contains(events, from) || !strings.Contains(events, to) {
		t.Errorf("no Event of hub lab names the move %s -> %s:\n%s", from, to, events)
	}
	t.Logf("failover: hub lab %s -> %s in %v (status), clients ping again after %v; events:\n%s",
		from, to, moved.Round(time.Millisecond), back.Round(time.Millisecond), events)
	// The StatefulSet brings the deleted member back.
	e2e.Eventually(t, 120*time.Second, "the deleted member back and Ready", func() (bool, error) {
		return c.Status(t).ReadyMembers == 3, nil
	})
}

type object struct {
	kind, name string
	namespaced bool
}

// releaseObjects lists what the release installed (`helm get manifest`).
func releaseObjects(t *testing.T, h *helm) []object {
	t.Helper()
	manifest := h.run(t, "get", "manifest", release, "--namespace", namespace)
	var objs []object
	for _, doc := range strings.Split(manifest, "\n---") {
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("helm get manifest: %v", err)
		}
		if o.Kind != "" {
			objs = append(objs, object{kind: o.Kind, name: o.Metadata.Name, namespaced: o.Metadata.Namespace != ""})
		}
	}
	if len(objs) < 8 {
		t.Fatalf("helm get manifest lists %d objects:\n%s", len(objs), manifest)
	}
	return objs
}
