// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// One local cluster for every e2e package (`make e2e`, docs/e2e.md): RunSuite
// takes the cluster lock, brings the cluster up, builds and imports the image,
// records what the fresh cluster holds (the baseline), and runs `go test -p 1`
// on the packages with SharedEnv set to its work directory. Each package's Main
// then skips the lock, the bring-up and the teardown, uses the binary and the
// kubectl of that cluster, and before and after its tests removes whatever is
// not in the baseline — the operator of config/default, a Helm release, the
// CRDs, test namespaces, the demo sample — so every package starts from the
// cluster it would have had on its own. RunSuite dumps diagnostics on failure
// and brings the cluster down, checking that nothing is left behind.

// SharedEnv, set by RunSuite for the packages it runs, names its work
// directory: the cluster is up, the image imported, the lock held by the
// caller, and the clients' hubfleet binary and the baseline are in it.
const SharedEnv = "HUBFLEET_E2E_SHARED"

const (
	baselineFile = "baseline.json"
	// dumpedFile is created by a package that dumped the cluster-wide
	// diagnostics after failing, so RunSuite does not repeat them.
	dumpedFile = "diagnostics-dumped"

	// What the reset compares with the baseline: cluster-scoped kinds a
	// package may create (config/default and the chart create CRDs,
	// ClusterRoles and ClusterRoleBindings), and namespaced kinds in the
	// namespace `default`, where the chart test applies config/samples.
	clusterKinds = "namespaces,customresourcedefinitions,clusterroles,clusterrolebindings," +
		"validatingwebhookconfigurations,mutatingwebhookconfigurations,priorityclasses"
	defaultKinds = "secrets,configmaps,services,serviceaccounts,roles,rolebindings," +
		"statefulsets,deployments,pods,leases,poddisruptionbudgets"
)

// baseline is what the fresh cluster holds, as `kubectl get -o name` lines.
type baseline struct {
	Cluster []string `json:"cluster"`
	Default []string `json:"default"`
}

// RunSuite is `make e2e` (internal/e2e/suite): one local cluster for every
// package that `go test <goTestArgs>` runs, one package at a time. It returns
// the exit code.
func RunSuite(goTestArgs []string) int {
	if os.Geteuid() != 0 {
		logf("the e2e tests need root (the local cluster, network namespaces, TAP devices)")
		return 1
	}
	Root = repoRoot()
	// A `| tee` that dies (Ctrl-C) must not kill us before the teardown: a
	// write to a broken pipe then fails instead of raising SIGPIPE. Caught,
	// not ignored, so the scripts we start get the default disposition.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	unlock, err := lockCluster()
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer unlock()

	var (
		mu          sync.Mutex
		child       *exec.Cmd // go test, in its own process group, while it runs
		interrupted os.Signal
	)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		mu.Lock()
		interrupted = s
		c := child
		mu.Unlock()
		if c == nil {
			// Bringing the cluster up or the image in: as Main on its own.
			logf("%v: tearing the local cluster down", s)
			teardown()
			unlock()
			os.Exit(130)
		}
		// go test runs: stop it (a test binary dies at once; its clients
		// with it, Pdeathsig), then the main goroutine tears down, network
		// namespaces included.
		logf("%v: stopping go test, then tearing the local cluster down", s)
		syscall.Kill(-c.Process.Pid, s.(syscall.Signal))
		time.AfterFunc(60*time.Second, func() { syscall.Kill(-c.Process.Pid, syscall.SIGKILL) })
	}()

	start := time.Now()
	code := 1
	if err := setup(); err != nil {
		logf("setup failed: %v", err)
		dumpDiagnostics()
	} else if err := writeBaseline(); err != nil {
		logf("%v", err)
		dumpDiagnostics()
	} else {
		logf("setup done in %.1fs; running go test on one cluster for every package", time.Since(start).Seconds())
		args := append([]string{"test", "-p", "1"}, goTestArgs...)
		cmd := exec.Command("go", args...)
		cmd.Dir = Root
		cmd.Env = append(os.Environ(), "HUBFLEET_E2E=1", SharedEnv+"="+WorkDir)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		// Its own process group: a signal to us reaches the tests through
		// the handler above, after which we still tear down.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		t := time.Now()
		mu.Lock()
		err := cmd.Start()
		if err == nil {
			child = cmd
		}
		mu.Unlock()
		if err == nil {
			err = cmd.Wait()
		}
		mu.Lock()
		child = nil
		sig := interrupted
		mu.Unlock()
		logf("TIMING go test %s: %.1fs (%v)", strings.Join(goTestArgs, " "), time.Since(t).Seconds(), exitStatus(err))
		if err == nil {
			code = 0
		} else if sig == nil {
			// A package that failed dumped the diagnostics itself, while its
			// objects were still there; a package killed by its -timeout
			// could not.
			if _, serr := os.Stat(filepath.Join(WorkDir, dumpedFile)); serr != nil {
				dumpDiagnostics()
			}
		}
		if sig != nil {
			code = 130
		}
	}
	if os.Getenv("HUBFLEET_E2E_KEEP") == "1" {
		logf("HUBFLEET_E2E_KEEP=1: leaving the local cluster up and releasing the lock; "+
			"export KUBECONFIG=%s (kubectl %s); take it down with `flock %s hack/local-cluster.sh down`",
			kubeconfig, kubectlBin, LockFile)
		logf("TIMING suite: %.1fs", time.Since(start).Seconds())
		return code
	}
	if !teardown() && code == 0 {
		code = 1
	}
	logf("TIMING suite (lock held, up to down): %.1fs", time.Since(start).Seconds())
	return code
}

func exitStatus(err error) string {
	if err == nil {
		return "passed"
	}
	return err.Error()
}

// runShared is Main under RunSuite: the cluster is the caller's.
func runShared(m *testing.M, dir string) int {
	if err := checkShared(dir); err != nil {
		logf("%s=%s: %v", SharedEnv, dir, err)
		return 1
	}
	WorkDir = dir
	HubfleetBin = filepath.Join(dir, "hubfleet")
	var base baseline
	b, err := os.ReadFile(filepath.Join(dir, baselineFile))
	if err == nil {
		err = json.Unmarshal(b, &base)
	}
	if err != nil {
		logf("reading the shared cluster's baseline: %v", err)
		return 1
	}
	// Normally the previous package left the cluster clean; not if its test
	// binary was killed (-timeout) before its own reset.
	if err := resetCluster(base, "before the tests"); err != nil {
		logf("%v", err)
		dumpDiagnostics()
		return 1
	}
	code := m.Run()
	if code != 0 {
		dumpDiagnostics()
		os.WriteFile(filepath.Join(dir, dumpedFile), nil, 0o644)
	}
	if os.Getenv("HUBFLEET_E2E_KEEP") == "1" {
		logf("HUBFLEET_E2E_KEEP=1: leaving this package's objects in the cluster (the next package removes them)")
		return code
	}
	if err := resetCluster(base, "after the tests"); err != nil {
		logf("%v", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// checkShared refuses SharedEnv unless the cluster it announces is there and
// someone holds the cluster lock (RunSuite does, for as long as we run).
func checkShared(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "hubfleet")); err != nil {
		return fmt.Errorf("no hubfleet binary: %w (set by `make e2e` only)", err)
	}
	f, err := os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return fmt.Errorf("nobody holds the cluster lock %s, so no run owns the cluster (set by `make e2e` only)", LockFile)
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("locking %s: %w", LockFile, err)
	}
	kubectlBin, err = clusterKubectl()
	return err
}

// writeBaseline records what the freshly started cluster holds.
func writeBaseline() error {
	// Published by kube-controller-manager shortly after start: wait for it so
	// the baseline has it (the reset never deletes it anyway).
	Poll(30*time.Second, 200*time.Millisecond, func() (bool, error) {
		_, err := KubectlErr("get", "configmap", "-n", "default", "kube-root-ca.crt")
		return err == nil, err
	})
	base, err := snapshot()
	if err != nil {
		return fmt.Errorf("recording the cluster's baseline: %w", err)
	}
	b, _ := json.MarshalIndent(base, "", "  ")
	return os.WriteFile(filepath.Join(WorkDir, baselineFile), b, 0o644)
}

func snapshot() (baseline, error) {
	var b baseline
	var err error
	if b.Cluster, err = names("get", clusterKinds, "-o", "name"); err != nil {
		return b, err
	}
	b.Default, err = names("get", defaultKinds, "-n", "default", "-o", "name")
	return b, err
}

func names(args ...string) ([]string, error) {
	out, err := KubectlErr(args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// kept is what the reset never deletes even when the baseline lacks it: what
// the cluster itself creates.
func kept(name string) bool {
	_, n, _ := strings.Cut(name, "/")
	switch {
	case strings.HasPrefix(n, "system:"), strings.HasPrefix(n, "kube-"),
		n == "default", n == "kubernetes", n == "kube-root-ca.crt":
		return true
	}
	return false
}

func extra(cur, base []string) []string {
	var out []string
	for _, n := range cur {
		if !slices.Contains(base, n) && !kept(n) {
			out = append(out, n)
		}
	}
	return out
}

// resetCluster returns the shared cluster to its baseline: hubfleet's custom
// resources first (their finalizer needs the operator, which goes with its
// namespace), then every namespace and cluster-scoped object not in the
// baseline, and the objects added to `default`; it waits until they are gone,
// so the next package can create them again.
func resetCluster(base baseline, when string) error {
	removeStaleNamespaces()
	cur, err := snapshot()
	if err != nil {
		return fmt.Errorf("reset %s: %w", when, err)
	}
	xc, xd := extra(cur.Cluster, base.Cluster), extra(cur.Default, base.Default)
	if len(xc)+len(xd) == 0 {
		return nil
	}
	start := time.Now()
	logf("shared cluster, %s: removing what is not in the fresh cluster: %s", when, strings.Join(append(xc, xd...), " "))

	// The hubfleet CRDs present (all three, normally).
	var kinds []string
	for _, n := range cur.Cluster {
		if crd, ok := strings.CutPrefix(n, "customresourcedefinition.apiextensions.k8s.io/"); ok && strings.HasSuffix(crd, ".vpn.hubfleet.io") {
			kinds = append(kinds, crd)
		}
	}
	if hubfleetKinds := strings.Join(kinds, ","); hubfleetKinds != "" {
		if out, err := KubectlErr("delete", hubfleetKinds, "--all", "-A", "--wait=false"); err != nil {
			logf("%s", out)
		}
		if _, err := Poll(90*time.Second, 500*time.Millisecond, func() (bool, error) {
			out, err := KubectlErr("get", hubfleetKinds, "-A", "-o", "name")
			return err == nil && strings.TrimSpace(out) == "", fmt.Errorf("left: %s %v", strings.Join(strings.Fields(out), " "), err)
		}); err != nil {
			// No operator to run the finalizer (a test stopped it and
			// failed): without it the namespaces would never go.
			logf("hubfleet objects not finalized, removing their finalizers: %v", err)
			out, _ := KubectlErr("get", hubfleetKinds, "-A", "-o",
				`jsonpath={range .items[*]}{.metadata.namespace} {.kind} {.metadata.name}{"\n"}{end}`)
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if f := strings.Fields(line); len(f) == 3 {
					KubectlErr("patch", "-n", f[0], strings.ToLower(f[1])+".vpn.hubfleet.io", f[2],
						"--type", "merge", "-p", `{"metadata":{"finalizers":null}}`)
				}
			}
		}
	}
	if len(xd) > 0 {
		if out, err := KubectlErr(append([]string{"delete", "-n", "default", "--ignore-not-found", "--wait=false"}, xd...)...); err != nil {
			logf("%s", out)
		}
	}
	if len(xc) > 0 {
		if out, err := KubectlErr(append([]string{"delete", "--ignore-not-found", "--wait=false"}, xc...)...); err != nil {
			logf("%s", out)
		}
	}
	if _, err := Poll(180*time.Second, 500*time.Millisecond, func() (bool, error) {
		now, err := snapshot()
		if err != nil {
			return false, err
		}
		left := append(extra(now.Cluster, base.Cluster), extra(now.Default, base.Default)...)
		return len(left) == 0, fmt.Errorf("still there: %s", strings.Join(left, " "))
	}); err != nil {
		return fmt.Errorf("reset %s: %w", when, err)
	}
	logf("TIMING shared cluster reset %s: %.1fs", when, time.Since(start).Seconds())
	return nil
}
