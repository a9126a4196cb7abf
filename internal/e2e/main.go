// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package e2e is the shared framework of the end-to-end tests (test/e2e and its
// subpackages): it runs them against the real local Kubernetes of
// hack/local-cluster.sh with the operator and members as pods from the image built
// from this checkout, and clients whose TAP devices live in network namespaces the
// tests create and remove. See docs/e2e.md.
//
// A test package uses it from its TestMain:
//
//	func TestMain(m *testing.M) { e2e.Main(m) }
//
// Main skips everything unless HUBFLEET_E2E=1 (`make e2e` sets it), because it
// starts a Kubernetes node as root.
//
// On its own (`HUBFLEET_E2E=1 go test ./test/e2e/bridge`) Main brings the local
// cluster up and down for its package. `make e2e` instead runs RunSuite
// (internal/e2e/suite), which brings the cluster up once for every package and
// sets SharedEnv: Main then uses that cluster and returns it to the state it
// found it in (shared.go).
package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// LockFile serialises every use of the local cluster on this machine
	// (docs/local-cluster.md): whoever brings it up holds an exclusive flock on it
	// until it is down again.
	LockFile = "/tmp/hubfleet-cluster.lock"
	// ClusterDir is hack/local-cluster.sh's default state directory.
	ClusterDir = "/tmp/hubfleet-cluster"
	// NodeIP is the node's address on the cluster bridge hfbr0: the API server,
	// NodePorts and the gateway of the pod network.
	NodeIP = "198.18.0.1"
	// Image is the tag the operator and the members run; it is imported, never pulled.
	Image = "hubfleet:dev"
)

var (
	// Root is the repository's root directory.
	Root string
	// HubfleetBin is the hubfleet binary packaged into the image, used for the clients.
	HubfleetBin string
	// WorkDir holds what a run builds (binary, image tarball, password files).
	WorkDir string

	kubectlBin string
	kubeconfig = filepath.Join(ClusterDir, "kubeconfig")
)

// Main is the TestMain of an e2e package: without HUBFLEET_E2E=1 it exits 0 at
// once; otherwise it takes the cluster lock (waiting for it), brings the local
// cluster up, builds and imports the image, runs the tests, dumps diagnostics if
// anything failed, and brings the cluster down (unless HUBFLEET_E2E_KEEP=1),
// checking that nothing is left behind.
func Main(m *testing.M) { os.Exit(run(m)) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[e2e %s] %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func run(m *testing.M) int {
	if os.Getenv("HUBFLEET_E2E") != "1" {
		fmt.Println("e2e: skipped — these tests start a real Kubernetes node as root; run `make e2e` or set HUBFLEET_E2E=1")
		return 0
	}
	if os.Geteuid() != 0 {
		logf("the e2e tests need root (the local cluster, network namespaces, TAP devices)")
		return 1
	}
	Root = repoRoot()
	if dir := os.Getenv(SharedEnv); dir != "" {
		return runShared(m, dir)
	}

	unlock, err := lockCluster()
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer unlock()

	// Ctrl-C or a kill of `go test` must still take the cluster down; a `go test`
	// timeout panics without this path, and the next run cleans up (below).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		logf("%v: tearing the local cluster down", s)
		teardown()
		unlock()
		os.Exit(130)
	}()

	code := 1
	start := time.Now()
	if err := setup(); err != nil {
		logf("setup failed: %v", err)
		dumpDiagnostics()
	} else {
		logf("setup done in %.1fs", time.Since(start).Seconds())
		code = m.Run()
		if code != 0 {
			dumpDiagnostics()
		}
	}
	if os.Getenv("HUBFLEET_E2E_KEEP") == "1" {
		logf("HUBFLEET_E2E_KEEP=1: leaving the local cluster up and releasing the lock; "+
			"export KUBECONFIG=%s (kubectl %s); take it down with `flock %s hack/local-cluster.sh down`",
			kubeconfig, kubectlBin, LockFile)
		return code
	}
	if !teardown() && code == 0 {
		code = 1
	}
	return code
}

// repoRoot is the repository's root directory (this file's ../..).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// lockCluster takes the exclusive flock on LockFile, blocking (and saying so)
// while someone else holds it. The descriptor is close-on-exec, so the daemons
// the cluster script starts do not inherit the lock.
func lockCluster() (func(), error) {
	f, err := os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the cluster lock %s: %w", LockFile, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", LockFile, err)
		}
		logf("waiting for the local-cluster lock %s (someone else's cluster is up; this can take minutes)", LockFile)
		t := time.Now()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", LockFile, err)
		}
		logf("got the lock after %.0fs", time.Since(t).Seconds())
	}
	var once bool
	return func() {
		if once {
			return
		}
		once = true
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// setup brings the cluster up and imports an image built from this checkout.
func setup() error {
	// We hold the lock, so anything of ours still present was left by a run that
	// died (a `go test` timeout does not run deferred code): clean it up first.
	removeStaleNamespaces()
	if _, err := os.Stat(filepath.Join(ClusterDir, "state")); err == nil {
		logf("leftovers of an earlier run in %s: taking them down first", ClusterDir)
		if err := script("down"); err != nil {
			return err
		}
	}
	t := time.Now()
	if err := script("up"); err != nil {
		return err
	}
	logf("TIMING cluster up: %.1fs", time.Since(t).Seconds())
	var err error
	if kubectlBin, err = clusterKubectl(); err != nil {
		return err
	}

	// Our own build directory: bin/ and dist/ of the checkout are shared with
	// whoever else builds there meanwhile.
	WorkDir, err = os.MkdirTemp("", "hubfleet-e2e-")
	if err != nil {
		return err
	}
	HubfleetBin = filepath.Join(WorkDir, "hubfleet")
	tar := filepath.Join(WorkDir, "hubfleet-image.tar")
	t = time.Now()
	// The same recipe as `make image` / `make run`, into our directory.
	if err := command(Root, "make", "--no-print-directory", "image", "LOCALBIN="+WorkDir, "IMAGE_TAR="+tar, "IMAGE="+Image); err != nil {
		return fmt.Errorf("building the image: %w", err)
	}
	if err := script("load", tar); err != nil {
		return err
	}
	logf("TIMING image build + import: %.1fs", time.Since(t).Seconds())
	return nil
}

// clusterKubectl is the kubectl the running cluster's script recorded.
func clusterKubectl() (string, error) {
	bin, err := os.ReadFile(filepath.Join(ClusterDir, "state", "bin"))
	if err != nil {
		return "", fmt.Errorf("the cluster script did not record its bin directory: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(bin)), "kubectl"), nil
}

// teardown brings the cluster down and checks that nothing is left; false if
// either failed.
func teardown() bool {
	ok := true
	removeStaleNamespaces()
	t := time.Now()
	if err := script("down"); err != nil {
		logf("hack/local-cluster.sh down: %v", err)
		ok = false
	}
	logf("TIMING cluster down: %.1fs", time.Since(t).Seconds())
	if err := script("check-clean"); err != nil {
		logf("the local cluster left something behind: %v", err)
		ok = false
	}
	if WorkDir != "" {
		os.RemoveAll(WorkDir)
	}
	return ok
}

// script runs hack/local-cluster.sh with its progress on our stderr.
func script(args ...string) error {
	cmd := exec.Command(filepath.Join(Root, "hack", "local-cluster.sh"), args...)
	cmd.Dir = Root
	cmd.Env = append(os.Environ(), "HUBFLEET_CLUSTER_DIR="+ClusterDir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/local-cluster.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func command(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// removeStaleNamespaces deletes network namespaces named like ours (hfe2e-*):
// with the lock held they can only be leftovers of a run that died.
func removeStaleNamespaces() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, nsPrefix) {
			// Its client died with the test binary that started it (Pdeathsig).
			logf("removing leftover network namespace %s", name)
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// dumpDiagnostics prints what explains a failure: objects, events, the
// operator's and members' logs, and the tails of the cluster's own logs.
func dumpDiagnostics() {
	logf("----- diagnostics")
	if kubectlBin != "" {
		for _, args := range [][]string{
			{"get", "nodes,pods,services,statefulsets,leases", "-A", "-o", "wide"},
			{"get", "vpnclusters,virtualhubs,connectionlicenses", "-A", "-o", "yaml"},
			{"get", "events", "-A", "--sort-by=.lastTimestamp"},
			{"logs", "-n", OperatorNamespace, "deployment/" + OperatorDeployment, "--tail=200"},
		} {
			out, _ := KubectlErr(args...)
			fmt.Fprintf(os.Stderr, "----- kubectl %s\n%s\n", strings.Join(args, " "), out)
		}
		pods, _ := KubectlErr("get", "pods", "-A", "-l", "app.kubernetes.io/component=member",
			"-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}`)
		for _, p := range strings.Fields(pods) {
			ns, name, _ := strings.Cut(p, "/")
			for _, prev := range []string{"--previous=false", "--previous=true"} {
				out, err := KubectlErr("logs", "-n", ns, name, prev, "--tail=80")
				if err == nil {
					fmt.Fprintf(os.Stderr, "----- logs %s %s\n%s\n", p, prev, out)
				}
			}
		}
	}
	logs, _ := filepath.Glob(filepath.Join(ClusterDir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		fmt.Fprintf(os.Stderr, "----- %s (tail)\n%s\n", filepath.Base(l), b)
	}
}
