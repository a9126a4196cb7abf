// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package chart

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/testenv"
)

// sampleDirs are the sample sets under config/samples that are kustomizations
// of their own (hosting, remote-access, ...); config/samples itself is tested
// file by file in test/crd.
func sampleDirs(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	if len(dirs) == 0 {
		t.Fatal("no sample directories (config/samples/*/kustomization.yaml)")
	}
	return dirs
}

// kubectl runs kubectl against the test control plane as a cluster admin.
func kubectl(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	kubeconfig, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.KubectlPath(), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return cmd.CombinedOutput()
}

// TestSampleDirsApply: `kubectl apply -k config/samples/<set>` is accepted for
// every sample set. The namespaces a set brings are created for real first
// (a dry-run creates nothing, so the objects in them would be refused), then
// the whole set goes through server-side apply in dry-run mode.
func TestSampleDirsApply(t *testing.T) {
	for _, dir := range sampleDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out := run(t, env.KubectlPath(), "kustomize", dir)
			objs := decode(t, out)
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					if msg, err := kubectl(t, nil, "create", "namespace", o.GetName()); err != nil && !strings.Contains(string(msg), "AlreadyExists") {
						t.Fatalf("creating namespace %s: %v\n%s", o.GetName(), err, msg)
					}
				}
			}
			if msg, err := kubectl(t, out, "apply", "--server-side", "--dry-run=server", "-f", "-"); err != nil {
				t.Fatalf("server-side dry-run refused %s: %v\n%s", dir, err, msg)
			}
		})
	}
}

// TestHostingTenantRBAC: in the hosting sample, a tenant's administrators
// manage the VirtualHubs and users Secrets of their own namespace and nothing
// else — asked of the API server's own authorizer with impersonation.
func TestHostingTenantRBAC(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples", "hosting")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	if msg, err := kubectl(t, nil, "apply", "--server-side", "-k", dir); err != nil {
		t.Fatalf("kubectl apply -k %s: %v\n%s", dir, err, msg)
	}
	canI := func(group, verb, resource, ns string) bool {
		t.Helper()
		args := append([]string{"auth", "can-i", verb}, strings.Fields(resource)...)
		args = append(args, "--as", "someone", "--as-group", group)
		if ns != "" {
			args = append(args, "-n", ns)
		} else {
			args = append(args, "--all-namespaces")
		}
		out, err := kubectl(t, nil, args...)
		answer := strings.TrimSpace(string(out))
		switch {
		case answer == "yes" && err == nil:
			return true
		case strings.HasPrefix(answer, "no"):
			return false
		}
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		return false
	}
	type check struct {
		group, verb, resource, ns string
		want                      bool
	}
	checks := []check{
		{"tenant-a-admins", "create", "virtualhubs.vpn.hubfleet.io", "tenant-a", true},
		{"tenant-a-admins", "delete", "virtualhubs.vpn.hubfleet.io/corp", "tenant-a", true},
		{"tenant-a-admins", "update", "secrets/corp-users", "tenant-a", true},
		{"tenant-a-admins", "create", "secrets", "tenant-a", true},
		{"tenant-a-admins", "watch", "events", "tenant-a", true},
		// Not another tenant's hubs or users.
		{"tenant-a-admins", "get", "virtualhubs.vpn.hubfleet.io/shop", "tenant-b", false},
		{"tenant-a-admins", "get", "secrets/shop-users", "tenant-b", false},
		{"tenant-b-admins", "update", "virtualhubs.vpn.hubfleet.io/corp", "tenant-a", false},
		{"tenant-b-admins", "update", "virtualhubs.vpn.hubfleet.io/shop", "tenant-b", true},
		// Not the provider's fleet or licenses, nor hubs in every namespace.
		{"tenant-a-admins", "get", "vpnclusters.vpn.hubfleet.io", "vpn-hosting", false},
		{"tenant-a-admins", "create", "vpnclusters.vpn.hubfleet.io", "tenant-a", false},
		{"tenant-a-admins", "create", "connectionlicenses.vpn.hubfleet.io", "tenant-a", false},
		{"tenant-a-admins", "update", "virtualhubs.vpn.hubfleet.io/corp --subresource=status", "tenant-a", false},
		{"tenant-a-admins", "list", "virtualhubs.vpn.hubfleet.io", "", false},
		{"tenant-a-admins", "update", "roles.rbac.authorization.k8s.io", "tenant-a", false},
	}
	// The API server's RBAC authorizer learns the new Roles through its own
	// informers: poll each grant until it shows (bounded), then check the
	// refusals, which would hold trivially before that.
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].want && !checks[j].want })
	for _, c := range checks {
		got := canI(c.group, c.verb, c.resource, c.ns)
		for deadline := time.Now().Add(10 * time.Second); c.want && !got && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond) // polling interval of a bounded wait
			got = canI(c.group, c.verb, c.resource, c.ns)
		}
		if got != c.want {
			t.Errorf("%s may %s %s in %q: %v, want %v", c.group, c.verb, c.resource, c.ns, got, c.want)
		}
	}
}
