// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// randHex returns n random bytes as hex: names that never collide between tests.
func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewNamespace creates a namespace e2e-<prefix>-<random> for one test. At
// cleanup it dumps the namespace's objects and member logs if the test failed,
// then deletes it and waits (bounded) until its member pods are gone, so the
// next test has the machine's CPU to itself.
func NewNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := "e2e-" + prefix + "-" + randHex(3)
	Kubectl(t, "create", "namespace", ns)
	t.Cleanup(func() {
		if t.Failed() {
			DumpNamespace(t, ns)
		}
		// The VPNCluster's finalizer needs the operator; a test that stopped it
		// restarts it in its own cleanup, which runs before this one.
		if _, err := KubectlErr("delete", "namespace", ns, "--wait=false"); err != nil {
			t.Errorf("deleting namespace %s: %v", ns, err)
			return
		}
		if _, err := Poll(90*time.Second, 500*time.Millisecond, func() (bool, error) {
			out, err := KubectlErr("get", "pods", "-n", ns, "-o", "name")
			return err == nil && strings.TrimSpace(out) == "", err
		}); err != nil {
			t.Logf("pods of namespace %s still there after deletion: %v", ns, err)
		}
	})
	return ns
}

// DumpNamespace logs a namespace's hubfleet objects, pods, events, the member
// logs (current and previous containers) and the operator's log tail.
func DumpNamespace(t testing.TB, ns string) {
	t.Helper()
	for _, args := range [][]string{
		{"get", "pods,services,statefulsets,leases", "-n", ns, "-o", "wide"},
		{"get", "vpnclusters,virtualhubs,connectionlicenses", "-n", ns, "-o", "yaml"},
		{"get", "events", "-n", ns, "--sort-by=.lastTimestamp"},
		{"logs", "-n", OperatorNamespace, "deployment/" + OperatorDeployment, "--tail=150"},
	} {
		out, _ := KubectlErr(args...)
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	pods, _ := KubectlErr("get", "pods", "-n", ns, "-o", `jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}`)
	for _, p := range strings.Fields(pods) {
		for _, prev := range []string{"--previous=false", "--previous=true"} {
			if out, err := KubectlErr("logs", "-n", ns, p, prev, "--tail=100"); err == nil {
				t.Logf("logs %s/%s %s:\n%s", ns, p, prev, out)
			}
		}
	}
}

// HubSpec is one VirtualHub of a ClusterSpec.
type HubSpec struct {
	Name   string
	Static bool
}

// ClusterSpec describes a VPNCluster and what goes with it, all in one namespace.
type ClusterSpec struct {
	Name    string // default "vpn"
	Members int    // default 3
	// LeaseDurationSeconds is spec.failover.leaseDurationSeconds (0: the default).
	LeaseDurationSeconds int
	// MaxUnavailable is spec.failover.maxUnavailable (0: the default).
	MaxUnavailable int
	Hubs           []HubSpec
	// Users: user name → password. They go, argon2id-hashed, into one Secret
	// that every hub uses.
	Users map[string]string
	// ClientLicenses and BridgeLicenses make a ConnectionLicense when either is
	// positive; without one the members admit without limit.
	ClientLicenses, BridgeLicenses int
}

// Cluster is a VPNCluster the test created and waited for.
type Cluster struct {
	Namespace, Name string
	Members         int
	// CAFingerprint is status.caFingerprint, for --ca-fingerprint.
	CAFingerprint string
	// NodePort is the client Service's node port: clients use NodeIP:NodePort.
	NodePort  int
	Passwords map[string]string // user → password file
}

// Server is the address clients use: the node's IP and the Service's node port.
func (c *Cluster) Server() string { return fmt.Sprintf("%s:%d", NodeIP, c.NodePort) }

// CreateCluster creates a namespace and in it the users Secret, the VPNCluster
// (NodePort Service), its hubs and license, then waits until every member is
// Ready and every hub is placed.
func CreateCluster(t testing.TB, spec ClusterSpec) *Cluster {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "vpn"
	}
	if spec.Members == 0 {
		spec.Members = 3
	}
	ns := NewNamespace(t, strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(shortName(t))))
	c := &Cluster{Namespace: ns, Name: spec.Name, Members: spec.Members, Passwords: map[string]string{}}

	users := map[string]string{}
	for u, pw := range spec.Users {
		h, err := auth.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		users[u] = h
		c.Passwords[u] = writePasswordFile(t, ns+"-"+u, pw)
	}
	var docs []any
	docs = append(docs, map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": spec.Name + "-users", "namespace": ns},
		"stringData": users,
	})
	failover := map[string]any{}
	if spec.LeaseDurationSeconds > 0 {
		failover["leaseDurationSeconds"] = spec.LeaseDurationSeconds
	}
	if spec.MaxUnavailable > 0 {
		failover["maxUnavailable"] = spec.MaxUnavailable
	}
	docs = append(docs, map[string]any{
		"apiVersion": "vpn.hubfleet.io/v1alpha1", "kind": "VPNCluster",
		"metadata": map[string]any{"name": spec.Name, "namespace": ns},
		"spec": map[string]any{
			"members":  spec.Members,
			"port":     443,
			"service":  map[string]any{"type": "NodePort"},
			"failover": failover,
		},
	})
	for _, h := range spec.Hubs {
		typ := "Dynamic"
		if h.Static {
			typ = "Static"
		}
		docs = append(docs, map[string]any{
			"apiVersion": "vpn.hubfleet.io/v1alpha1", "kind": "VirtualHub",
			"metadata": map[string]any{"name": h.Name, "namespace": ns},
			"spec": map[string]any{
				"clusterRef": map[string]any{"name": spec.Name},
				"type":       typ,
				"users":      map[string]any{"secretName": spec.Name + "-users"},
			},
		})
	}
	if spec.ClientLicenses > 0 || spec.BridgeLicenses > 0 {
		docs = append(docs, map[string]any{
			"apiVersion": "vpn.hubfleet.io/v1alpha1", "kind": "ConnectionLicense",
			"metadata": map[string]any{"name": spec.Name, "namespace": ns},
			"spec": map[string]any{
				"clusterRef":        map[string]any{"name": spec.Name},
				"clientConnections": spec.ClientLicenses,
				"bridgeConnections": spec.BridgeLicenses,
			},
		})
	}
	var b strings.Builder
	for _, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	start := time.Now()
	Apply(t, b.String())

	Eventually(t, 180*time.Second, fmt.Sprintf("VPNCluster %s/%s: all %d members Ready", ns, spec.Name, spec.Members), func() (bool, error) {
		st, err := clusterStatus(ns, spec.Name)
		if err != nil {
			return false, err
		}
		c.CAFingerprint = st.CAFingerprint
		return st.ReadyMembers == spec.Members && st.CAFingerprint != "", fmt.Errorf("ready %d/%d, caFingerprint %q", st.ReadyMembers, spec.Members, st.CAFingerprint)
	})
	Eventually(t, 60*time.Second, "client Service node port", func() (bool, error) {
		out, err := KubectlErr("get", "service", "-n", ns, spec.Name, "-o", "jsonpath={.spec.ports[0].nodePort}")
		if err != nil {
			return false, err
		}
		c.NodePort, err = strconv.Atoi(strings.TrimSpace(out))
		return err == nil && c.NodePort > 0, err
	})
	for _, h := range spec.Hubs {
		Eventually(t, 60*time.Second, fmt.Sprintf("hub %s placed", h.Name), func() (bool, error) {
			hs, err := hubStatus(ns, h.Name)
			if err != nil {
				return false, err
			}
			if h.Static {
				return len(hs.Instances) == spec.Members, fmt.Errorf("%d instances", len(hs.Instances))
			}
			return hs.AssignedMember != "", fmt.Errorf("no assignedMember yet")
		})
	}
	t.Logf("cluster %s/%s: %d members Ready, hubs placed, node port %d, %.1fs after apply",
		ns, spec.Name, spec.Members, c.NodePort, time.Since(start).Seconds())
	return c
}

func shortName(t testing.TB) string {
	n := t.Name()
	if i := strings.LastIndex(n, "/"); i >= 0 {
		n = n[:i]
	}
	n = strings.TrimPrefix(n, "Test")
	if len(n) > 20 {
		n = n[:20]
	}
	return strings.Trim(n, "-")
}

func writePasswordFile(t testing.TB, name, pw string) string {
	t.Helper()
	p := filepath.Join(WorkDir, "pw-"+name)
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ClusterStatus is what the tests read of a VPNCluster's status.
type ClusterStatus struct {
	ReadyMembers  int    `json:"readyMembers"`
	CAFingerprint string `json:"caFingerprint"`
	Members       []struct {
		Name  string `json:"name"`
		PodIP string `json:"podIP"`
		Ready bool   `json:"ready"`
		State string `json:"state"`
	} `json:"members"`
}

func clusterStatus(ns, name string) (ClusterStatus, error) {
	var v struct {
		Status ClusterStatus `json:"status"`
	}
	err := getJSON(&v, "vpncluster", "-n", ns, name)
	return v.Status, err
}

// Status reads the VPNCluster's status.
func (c *Cluster) Status(t testing.TB) ClusterStatus {
	t.Helper()
	st, err := clusterStatus(c.Namespace, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// HubStatus is what the tests read of a VirtualHub's status.
type HubStatus struct {
	AssignedMember string `json:"assignedMember"`
	Instances      []struct {
		Member   string `json:"member"`
		Sessions int    `json:"sessions"`
		Ready    bool   `json:"ready"`
	} `json:"instances"`
	Sessions         int `json:"sessions"`
	LastReassignment *struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Reason string `json:"reason"`
		Time   string `json:"time"`
	} `json:"lastReassignment"`
}

func hubStatus(ns, name string) (HubStatus, error) {
	var v struct {
		Status HubStatus `json:"status"`
	}
	err := getJSON(&v, "virtualhub", "-n", ns, name)
	return v.Status, err
}

// Hub reads a VirtualHub's status.
func (c *Cluster) Hub(t testing.TB, name string) HubStatus {
	t.Helper()
	hs, err := hubStatus(c.Namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// AssignedMember is the hub's status.assignedMember.
func (c *Cluster) AssignedMember(t testing.TB, hub string) string {
	t.Helper()
	return c.Hub(t, hub).AssignedMember
}

// MemberPods lists the cluster's member pods, sorted by name.
func (c *Cluster) MemberPods(t testing.TB) []Pod {
	t.Helper()
	var l struct {
		Items []Pod `json:"items"`
	}
	GetJSON(t, &l, "pods", "-n", c.Namespace, "-l", memberpod.LabelCluster+"="+c.Name+",app.kubernetes.io/component=member")
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Metadata.Name < l.Items[j].Metadata.Name })
	return l.Items
}

// MemberPod reads one member pod.
func (c *Cluster) MemberPod(t testing.TB, name string) Pod {
	t.Helper()
	return GetPod(t, c.Namespace, name)
}

// Loads reads every member's Lease load (sessions per hub and kind), keyed by
// member name: which member serves which sessions.
func (c *Cluster) Loads(t testing.TB) map[string]memberlease.Load {
	t.Helper()
	loads, err := c.loads()
	if err != nil {
		t.Fatal(err)
	}
	return loads
}

// LoadsErr is Loads without a test, for sampling goroutines.
func (c *Cluster) LoadsErr() (map[string]memberlease.Load, error) { return c.loads() }

func (c *Cluster) loads() (map[string]memberlease.Load, error) {
	var l struct {
		Items []struct {
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := getJSON(&l, "leases", "-n", c.Namespace, "-l", memberpod.LabelCluster+"="+c.Name); err != nil {
		return nil, err
	}
	out := map[string]memberlease.Load{}
	for _, it := range l.Items {
		ld, err := memberlease.Decode(it.Metadata.Annotations[memberpod.AnnotationLoad])
		if err != nil {
			return nil, err
		}
		out[it.Metadata.Name] = ld
	}
	return out, nil
}

// WaitSessions waits until the members' Lease loads show, for hub
// (<namespace>/<name>), exactly the given client sessions per member (members
// not named must have none), and returns the loads.
func (c *Cluster) WaitSessions(t testing.TB, hub string, timeout time.Duration, want map[string]int) {
	t.Helper()
	key := c.Namespace + "/" + hub
	Eventually(t, timeout, fmt.Sprintf("member sessions of hub %s = %v", key, want), func() (bool, error) {
		loads, err := c.loads()
		if err != nil {
			return false, err
		}
		got := map[string]int{}
		for m, l := range loads {
			if n := int(l.Sessions[key].Client); n > 0 {
				got[m] = n
			}
		}
		b, _ := json.Marshal(got)
		if len(got) != len(want) {
			return false, fmt.Errorf("sessions per member %s", b)
		}
		for m, n := range want {
			if got[m] != n {
				return false, fmt.Errorf("sessions per member %s", b)
			}
		}
		return true, nil
	})
}
