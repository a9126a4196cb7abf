// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package crd tests the CustomResourceDefinitions as a user meets them: served by a
// real kube-apiserver, with samples accepted and mistakes refused with messages that
// say what is wrong and how to fix it.
package crd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test control plane:", err)
	}
	os.Exit(code)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// readObjects decodes every YAML document in a file.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testenv.DecodeObjects(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

func sampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found in config/samples (%v)", err)
	}
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			out = append(out, f)
		}
	}
	return out
}

// TestSamplesAccepted: every sample passes server-side validation, through the API
// and through `kubectl apply --dry-run=server`, exactly as a user would apply it.
func TestSamplesAccepted(t *testing.T) {
	kubeconfig, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			for _, obj := range readObjects(t, f) {
				if err := env.Client.Create(ctx(t), obj, client.DryRunAll); err != nil {
					t.Errorf("%s %s refused: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
			out, err := exec.Command(env.KubectlPath(), "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-f", f).CombinedOutput()
			if err != nil {
				t.Errorf("kubectl apply --dry-run=server -f %s: %v\n%s", f, err, out)
			}
		})
	}
	out, err := exec.Command(env.KubectlPath(), "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-k",
		filepath.Join(testenv.RepoRoot(), "config", "samples")).CombinedOutput()
	if err != nil {
		t.Errorf("kubectl apply --dry-run=server -k config/samples: %v\n%s", err, out)
	}
}

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("test object: %v", err)
	}
	if u.GetNamespace() == "" {
		u.SetNamespace("default")
	}
	return u
}

const cluster = `apiVersion: vpn.hubfleet.io/v1alpha1
kind: VPNCluster
metadata: {name: c}
spec:
`

const hub = `apiVersion: vpn.hubfleet.io/v1alpha1
kind: VirtualHub
metadata: {name: h}
spec:
`

const license = `apiVersion: vpn.hubfleet.io/v1alpha1
kind: ConnectionLicense
metadata: {name: l}
spec:
`

// TestInvalidObjectsRefused: each mistake a user could make is refused, and the
// message names the field, what is wrong, and the way out.
func TestInvalidObjectsRefused(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"no members", cluster + "  members: 0", "members must be at least 1"},
		{"negative members", cluster + "  members: -2", "members must be at least 1"},
		{"weight zero", cluster + "  weight: 0", "weight must be between 1 and 10000"},
		{"weight huge", cluster + "  weight: 50000", "weight must be between 1 and 10000"},
		{"maxUnavailable zero", cluster + "  failover: {maxUnavailable: 0}", "failover.maxUnavailable must be a number of members of at least 1, or a percentage"},
		{"maxUnavailable bad percent", cluster + "  failover: {maxUnavailable: '150%'}", "failover.maxUnavailable must be a number of members of at least 1, or a percentage"},
		{"maxUnavailable above members", cluster + "  members: 3\n  failover: {maxUnavailable: 5}", "failover.maxUnavailable cannot be larger than members"},
		{"selector missing", cluster + "  hubNamespaces: {from: Selector}", "hubNamespaces.selector is required when hubNamespaces.from is Selector"},
		{"selector unused", cluster + "  hubNamespaces: {from: All, selector: {matchLabels: {a: b}}}", "hubNamespaces.selector is only used when hubNamespaces.from is Selector"},
		{"nodePort on ClusterIP", cluster + "  service: {type: ClusterIP, nodePort: 30443}", "service.nodePort needs service.type NodePort or LoadBalancer"},
		{"hub without cluster name", hub + "  clusterRef: {name: ''}", "clusterRef.name is required"},
		{"hub cluster name invalid", hub + "  clusterRef: {name: Bad_Name}", "clusterRef.name must be a VPNCluster name"},
		{"bridge on dynamic hub", hub + "  clusterRef: {name: c}\n  type: Dynamic\n  localBridge: {interface: eth1}", "localBridge is only allowed on a Static hub"},
		{"bridge interface name", hub + "  clusterRef: {name: c}\n  type: Static\n  localBridge: {interface: this-name-is-too-long}", "localBridge.interface must be a Linux interface name"},
		{"license grants nothing", license + "  clusterRef: {name: c}\n  clientConnections: 0\n  bridgeConnections: 0", "a license must grant at least one connection"},
		{"license negative clients", license + "  clusterRef: {name: c}\n  clientConnections: -1\n  bridgeConnections: 3", "clientConnections cannot be negative"},
		{"license negative bridges", license + "  clusterRef: {name: c}\n  clientConnections: 3\n  bridgeConnections: -4", "bridgeConnections cannot be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(ctx(t), obj(t, tc.doc), client.DryRunAll)
			if err == nil {
				t.Fatalf("accepted; want refusal with %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("refused for another reason: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("message %q does not say %q", err.Error(), tc.want)
			}
		})
	}
}

// TestDefaults: a minimal cluster gets the documented defaults.
func TestDefaults(t *testing.T) {
	u := obj(t, cluster+"  members: 2")
	if err := env.Client.Create(ctx(t), u, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	spec := u.Object["spec"].(map[string]any)
	want := map[string]any{"port": int64(443), "weight": int64(100), "maxSessionsPerMember": int64(4096)}
	for k, v := range want {
		if spec[k] != v {
			t.Errorf("spec.%s defaulted to %v, want %v", k, spec[k], v)
		}
	}
	fo := spec["failover"].(map[string]any)
	if fo["leaseDurationSeconds"] != int64(3) || fo["maxUnavailable"] != "50%" {
		t.Errorf("failover defaults: %v", fo)
	}
	if ns := spec["hubNamespaces"].(map[string]any); ns["from"] != "Same" {
		t.Errorf("hubNamespaces default: %v", ns)
	}
	h := obj(t, hub+"  clusterRef: {name: c}")
	if err := env.Client.Create(ctx(t), h, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if typ := h.Object["spec"].(map[string]any)["type"]; typ != "Dynamic" {
		t.Errorf("hub type defaulted to %v, want Dynamic", typ)
	}
}

// TestHubTypeImmutable: a hub's type is fixed at creation, as in SoftEther.
func TestHubTypeImmutable(t *testing.T) {
	h := obj(t, hub+"  clusterRef: {name: c}\n  type: Static")
	h.SetName("immutable")
	if err := env.Client.Create(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), h) })
	if err := unstructured.SetNestedField(h.Object, "Dynamic", "spec", "type"); err != nil {
		t.Fatal(err)
	}
	err := env.Client.Update(ctx(t), h)
	if err == nil {
		t.Fatal("changing a hub's type was accepted")
	}
	if !strings.Contains(err.Error(), "type is immutable") {
		t.Fatalf("refused with %q, want it to say the type is immutable", err)
	}
	// Other fields stay editable.
	if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(h), h); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(h.Object, int64(10), "spec", "maxSessions"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Update(ctx(t), h); err != nil {
		t.Fatalf("updating maxSessions refused: %v", err)
	}
}

// TestPrinterColumns: `kubectl get` shows the figures a user looks for at a glance.
func TestPrinterColumns(t *testing.T) {
	want := map[string][]string{
		"vpnclusters.vpn.hubfleet.io":        {"Ready", "Sessions", "Hubs", "Available", "Age"},
		"virtualhubs.vpn.hubfleet.io":        {"Type", "Cluster", "Placement", "Sessions", "Ready", "Age"},
		"connectionlicenses.vpn.hubfleet.io": {"Cluster", "Clients", "Bridges", "Exhausted", "Age"},
	}
	shortNames := map[string]string{
		"vpnclusters.vpn.hubfleet.io": "vpnc", "virtualhubs.vpn.hubfleet.io": "vhub", "connectionlicenses.vpn.hubfleet.io": "vpnlic",
	}
	for name, cols := range want {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(ctx(t), client.ObjectKey{Name: name}, crd); err != nil {
			t.Fatalf("CRD %s not served: %v", name, err)
		}
		var got []string
		for _, v := range crd.Spec.Versions {
			if v.Name == "v1alpha1" && v.Served {
				for _, c := range v.AdditionalPrinterColumns {
					got = append(got, c.Name)
				}
				if v.Subresources == nil || v.Subresources.Status == nil {
					t.Errorf("%s: no status subresource", name)
				}
			}
		}
		for _, c := range cols {
			found := false
			for _, g := range got {
				found = found || g == c
			}
			if !found {
				t.Errorf("%s: printer column %q missing (have %v)", name, c, got)
			}
		}
		found := false
		for _, s := range crd.Spec.Names.ShortNames {
			found = found || s == shortNames[name]
		}
		if !found {
			t.Errorf("%s: short name %q missing (have %v)", name, shortNames[name], crd.Spec.Names.ShortNames)
		}
	}
}

// TestPrinterColumnsShowZeroSessions: a cluster or hub nobody is connected to
// shows SESSIONS 0 in `kubectl get`, not an empty cell that reads as "unknown".
// The operator's status writes leave zero counts out, so the schema defaults them.
func TestPrinterColumnsShowZeroSessions(t *testing.T) {
	c := obj(t, cluster+"  members: 1")
	c.SetName("idle")
	h := obj(t, hub+"  clusterRef: {name: idle}")
	h.SetName("idle")
	for _, o := range []*unstructured.Unstructured{c, h} {
		if err := env.Client.Create(ctx(t), o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	// Status as the operator writes it with no sessions: the counts left out.
	c.Object["status"] = map[string]any{"ready": "1/1", "readyMembers": int64(1)}
	h.Object["status"] = map[string]any{"placement": "idle-0", "assignedMember": "idle-0"}
	for _, o := range []*unstructured.Unstructured{c, h} {
		if err := env.Client.Status().Update(ctx(t), o); err != nil {
			t.Fatalf("writing %s status: %v", o.GetKind(), err)
		}
	}
	kubeconfig, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{"vpncluster/idle", "virtualhub/idle"} {
		out, err := exec.Command(env.KubectlPath(), "--kubeconfig", kubeconfig, "-n", "default", "get", res).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get %s: %v\n%s", res, err, out)
		}
		for col, want := range map[string]string{"SESSIONS": "0", "HUBS": "0"} {
			if res == "virtualhub/idle" && col == "HUBS" {
				continue
			}
			if got, ok := cell(string(out), col); !ok || got != want {
				t.Errorf("kubectl get %s: %s column is %q, want %q\n%s", res, col, got, want, out)
			}
		}
	}
}

// cell reads column col of the single row of a `kubectl get` table by the
// column's position in the header, as a reader's eye does: an empty cell must
// read as empty, not as the next column's value.
func cell(table, col string) (string, bool) {
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) != 2 {
		return "", false
	}
	start := strings.Index(lines[0], col)
	if start < 0 || start >= len(lines[1]) {
		return "", false
	}
	row := lines[1][start:]
	if end := strings.IndexByte(row, ' '); end >= 0 {
		row = row[:end]
	}
	return row, true
}
