// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package chart tests the Helm chart as an installer would use it: it lints, renders
// with default and non-default values, its output is accepted by a real
// kube-apiserver (server-side dry-run), and it grants the operator exactly the RBAC
// that config/rbac grants.
package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hubfleet/hubfleet/internal/testenv"
)

var (
	env  *testenv.Env
	helm string
)

func TestMain(m *testing.M) {
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "build-helm.sh")).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "building helm with hack/build-helm.sh:", err)
		os.Exit(1)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	helm = lines[len(lines)-1]
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func chartDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "hubfleet") }

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.DecodeObjects(data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, nameSuffix string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), nameSuffix) {
			return o
		}
	}
	return nil
}

func TestLint(t *testing.T) {
	out := run(t, helm, "lint", "--strict", chartDir())
	if !bytes.Contains(out, []byte("0 chart(s) failed")) {
		t.Fatalf("helm lint: %s", out)
	}
}

// TestDefaultsRenderAndApply: the default render is a complete, valid install.
func TestDefaultsRenderAndApply(t *testing.T) {
	out := run(t, helm, "template", "hf", chartDir(), "--namespace", "hubfleet-system")
	objs := decode(t, out)
	for _, want := range []struct{ kind, name string }{
		{"CustomResourceDefinition", "vpnclusters.vpn.hubfleet.io"},
		{"CustomResourceDefinition", "virtualhubs.vpn.hubfleet.io"},
		{"CustomResourceDefinition", "connectionlicenses.vpn.hubfleet.io"},
		{"Deployment", "-operator"}, {"ServiceAccount", "-operator"}, {"ClusterRole", "-operator"},
		{"ClusterRoleBinding", "-operator"}, {"Role", "-leader-election"}, {"Service", "-metrics"},
	} {
		if find(objs, want.kind, want.name) == nil {
			t.Errorf("default render has no %s *%s", want.kind, want.name)
		}
	}
	if find(objs, "PodMonitor", "") != nil || find(objs, "ServiceMonitor", "") != nil {
		t.Error("the default render needs the prometheus-operator CRDs (ServiceMonitor or PodMonitor)")
	}
	if find(objs, "PodDisruptionBudget", "") != nil {
		t.Error("a single replica got a PodDisruptionBudget: it would block every node drain")
	}
	crd := find(objs, "CustomResourceDefinition", "vpnclusters.vpn.hubfleet.io")
	if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Error("CRDs are not kept on uninstall by default")
	}
	dep := find(objs, "Deployment", "-operator")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)["securityContext"].(map[string]any)
	if c["readOnlyRootFilesystem"] != true || c["allowPrivilegeEscalation"] != false {
		t.Errorf("operator container is not locked down: %v", c)
	}
	if drop := c["capabilities"].(map[string]any)["drop"].([]any); len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("operator keeps capabilities: %v", drop)
	}
	applyDryRun(t, out)
}

// TestNonDefaultValues: replicas, CRD switches, metrics and scheduling values take effect.
func TestNonDefaultValues(t *testing.T) {
	out := run(t, helm, "template", "hf", chartDir(), "--namespace", "vpn",
		"--set", "replicas=2", "--set", "crds.keep=false", "--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.memberPodMonitor.enabled=true",
		"--set", "image.repository=registry.example/hubfleet", "--set", "image.tag=v9.9.9",
		"--set", "nodeSelector.pool=infra", "--set", "memberImage=registry.example/member:v1")
	objs := decode(t, out)
	if find(objs, "PodDisruptionBudget", "-operator") == nil {
		t.Error("two replicas but no PodDisruptionBudget")
	}
	if find(objs, "ServiceMonitor", "-operator") == nil {
		t.Error("serviceMonitor.enabled rendered no ServiceMonitor")
	}
	if pm := find(objs, "PodMonitor", "-members"); pm == nil {
		t.Error("memberPodMonitor.enabled rendered no PodMonitor")
	} else if eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints"); len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" {
		t.Errorf("member PodMonitor endpoints %v, want the members' port metrics", eps)
	}
	if a := find(objs, "CustomResourceDefinition", "virtualhubs.vpn.hubfleet.io").GetAnnotations(); a["helm.sh/resource-policy"] != "" {
		t.Error("crds.keep=false still keeps the CRDs")
	}
	dep := find(objs, "Deployment", "-operator")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	if c["image"] != "registry.example/hubfleet:v9.9.9" {
		t.Errorf("image %v", c["image"])
	}
	if !strings.Contains(fmt.Sprint(c["args"]), "--leader-elect=true") {
		t.Errorf("two replicas without leader election: %v", c["args"])
	}
	if !strings.Contains(fmt.Sprint(c["env"]), "registry.example/member:v1") {
		t.Errorf("memberImage not passed: %v", c["env"])
	}
	if ns, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "spec", "nodeSelector"); ns["pool"] != "infra" {
		t.Errorf("nodeSelector %v", ns)
	}
	none := run(t, helm, "template", "hf", chartDir(), "--set", "crds.enabled=false")
	if find(decode(t, none), "CustomResourceDefinition", "") != nil {
		t.Error("crds.enabled=false still renders CRDs")
	}
	// The schema refuses a value that is not in it, naming it.
	cmd := exec.Command(helm, "template", "hf", chartDir(), "--set", "replica=2")
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "replica") {
		t.Errorf("a misspelt value was accepted: %v %s", err, msg)
	}
}

// TestRBACMatchesConfig: the chart grants the operator the same rules as config/rbac.
func TestRBACMatchesConfig(t *testing.T) {
	chart := find(decode(t, run(t, helm, "template", "hf", chartDir())), "ClusterRole", "-operator")
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := find(decode(t, data), "ClusterRole", "hubfleet-operator")
	if config == nil || chart == nil {
		t.Fatal("ClusterRole missing from the chart or config/rbac")
	}
	if !reflect.DeepEqual(chart.Object["rules"], config.Object["rules"]) {
		t.Fatalf("chart and config/rbac grant different rules:\nchart:  %v\nconfig: %v", chart.Object["rules"], config.Object["rules"])
	}
}

// TestKustomizeApplies: `kubectl apply -k config/default` is accepted too.
func TestKustomizeApplies(t *testing.T) {
	out := run(t, env.KubectlPath(), "kustomize", filepath.Join(testenv.RepoRoot(), "config", "default"))
	applyDryRun(t, out)
}

// applyDryRun sends manifests through server-side apply in dry-run mode. CRDs are
// applied for real first, since the objects after them may depend on them.
func applyDryRun(t *testing.T, manifests []byte) {
	t.Helper()
	kubeconfig, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range []string{"hubfleet-system", "vpn"} {
		_ = exec.CommandContext(ctx, env.KubectlPath(), "--kubeconfig", kubeconfig, "create", "namespace", ns).Run()
	}
	cmd := exec.CommandContext(ctx, env.KubectlPath(), "--kubeconfig", kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "-")
	cmd.Stdin = bytes.NewReader(manifests)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("server-side dry-run refused the manifests: %v\n%s", err, out)
	}
}
