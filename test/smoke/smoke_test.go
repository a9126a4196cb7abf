// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package smoke is the smoke test of the local cluster (hack/local-cluster.sh): from
// a clean machine the cluster comes up, a pod from a locally built image becomes
// Ready, a Service reaches it, deleting the pod lets its StatefulSet recreate it, a
// killed container turns the pod unready and is restarted, and the cluster goes down
// leaving nothing behind.
//
// It starts real daemons as root, so it runs only when asked: `make smoke`, or
// HUBFLEET_SMOKE=1 go test ./test/smoke/. A plain `go test ./...` skips it.
package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

const (
	image     = "localhost/hubfleet/testserver:dev"
	bridge    = "hfbr0"
	namespace = "default"
)

// Addresses the test may send to: the local cluster's pod and service ranges, which
// exist only on this machine (see hack/local-cluster.sh). Anything else is refused
// before a packet is sent.
var allowed = []string{"198.18.0.0/24", "198.19.0.0/24"}

type env struct {
	t       *testing.T
	root    string
	script  string
	dir     string
	kubectl string
}

func TestLocalClusterSmoke(t *testing.T) {
	if os.Getenv("HUBFLEET_SMOKE") != "1" {
		t.Skip("starts a real Kubernetes node as root; run with `make smoke` or HUBFLEET_SMOKE=1")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the smoke test needs root (network, cgroups, mounts)")
	}
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: root, script: filepath.Join(root, "hack", "local-cluster.sh")}
	// A state directory of its own, so the test never tears down (or wipes) a
	// cluster someone started with `make cluster-up` in the default directory.
	e.dir = filepath.Join(os.TempDir(), "hubfleet-smoke-cluster")

	// The lock every user of the local cluster holds while it is up
	// (docs/local-cluster.md): an e2e run or another smoke test on this
	// machine is waited for, not mistaken for a leftover. Released after
	// the cluster is down (cleanups run last-registered first).
	lock, err := os.OpenFile(e2e.LockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		t.Logf("waiting for the local-cluster lock %s (someone else's cluster is up)", e2e.LockFile)
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
	}

	if out, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err == nil {
		t.Fatalf("a local cluster is already running (interface %s exists): `make cluster-down` first\n%s", bridge, out)
	}
	e.script1("check-clean") // clean state before we start

	var upStarted bool
	t.Cleanup(func() {
		if !upStarted {
			return
		}
		if t.Failed() {
			e.dumpDiagnostics()
		}
		// Tear down even when the test failed, and check nothing is left.
		start := time.Now()
		e.scriptTolerant("down", "--purge")
		t.Logf("TIMING cluster down: %.1fs", time.Since(start).Seconds())
		e.script1("check-clean")
		if _, err := os.Stat(e.dir); err == nil {
			t.Errorf("state directory %s still exists after down --purge", e.dir)
		}
	})

	// 1. Cluster up from clean.
	upStarted = true
	start := time.Now()
	e.script1("up")
	t.Logf("TIMING cluster up (incl. cached prerequisites): %.1fs", time.Since(start).Seconds())
	if b, err := os.ReadFile(filepath.Join(e.dir, "state", "timings")); err == nil {
		t.Logf("step timings:\n%s", b)
	}
	bin, err := os.ReadFile(filepath.Join(e.dir, "state", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	e.kubectl = filepath.Join(strings.TrimSpace(string(bin)), "kubectl")

	// 2. Image built here, without a Docker daemon, imported into containerd.
	start = time.Now()
	tar := filepath.Join(t.TempDir(), "testserver.tar")
	e.run(e.root, "go", "run", "./hack/image", "-program", "./hack/image/testserver", "-name", image, "-out", tar)
	e.script1("load", tar)
	t.Logf("TIMING build+import test image: %.1fs", time.Since(start).Seconds())

	// 3. StatefulSet of one replica and a Service in front of it.
	start = time.Now()
	e.kubectlIn(manifest, "apply", "-f", "-")
	pod := e.waitPodReady("smoke-0", "", 90*time.Second)
	t.Logf("TIMING pod Ready after apply: %.1fs (pod IP %s)", time.Since(start).Seconds(), pod.Status.PodIP)

	svcIP := strings.TrimSpace(e.kubectlOut("get", "service", "smoke", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"))
	// 4. The pod answers directly and through the Service IP (kube-proxy's rules).
	e.expectHTTP(net.JoinHostPort(pod.Status.PodIP, "8080"), "smoke-0", 30*time.Second)
	start = time.Now()
	e.expectHTTP(net.JoinHostPort(svcIP, "80"), "smoke-0", 30*time.Second)
	t.Logf("TIMING Service %s answered after %.1fs", svcIP, time.Since(start).Seconds())

	// Idle footprint of the whole stack with this one pod.
	t.Logf("status:\n%s", e.script1("status"))

	// 5. Delete the pod; the StatefulSet recreates it (new UID) and it becomes Ready.
	start = time.Now()
	e.kubectlOut("delete", "pod", "smoke-0", "-n", namespace, "--wait=false")
	re := e.waitPodReady("smoke-0", pod.Metadata.UID, 90*time.Second)
	t.Logf("TIMING recreated pod Ready after delete: %.1fs (uid %s -> %s)", time.Since(start).Seconds(), pod.Metadata.UID, re.Metadata.UID)
	e.expectHTTP(net.JoinHostPort(svcIP, "80"), "smoke-0", 30*time.Second)

	// 6. Kill the container's process: the kubelet reports Ready=False and restarts
	// it. hubfleet's failure detection starts from exactly these signals.
	e.killContainer(re)
	start = time.Now()
	e.waitPod("smoke-0", 30*time.Second, "Ready=False", func(p e2e.Pod) bool { return !p.Ready() })
	notReady := time.Since(start)
	restarted := e.waitPod("smoke-0", 60*time.Second, "restarted and Ready", func(p e2e.Pod) bool {
		return p.Ready() && p.Restarts() > re.Restarts()
	})
	t.Logf("TIMING killed container: Ready=False after %.1fs, restarted (restartCount %d) and Ready after %.1fs",
		notReady.Seconds(), restarted.Restarts(), time.Since(start).Seconds())
	e.expectHTTP(net.JoinHostPort(svcIP, "80"), "smoke-0", 30*time.Second)
}

// killContainer sends SIGKILL to the pod's container through containerd, as an
// out-of-memory kill or a crash would end it.
func (e *env) killContainer(p e2e.Pod) {
	e.t.Helper()
	if len(p.Status.ContainerStatuses) == 0 {
		e.t.Fatal("pod has no container status")
	}
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	e.run(e.root, "ctr", "--address", filepath.Join(e.dir, "run", "containerd.sock"), "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
}

const manifest = `
apiVersion: v1
kind: Service
metadata:
  name: smoke
  namespace: default
spec:
  selector: { app: smoke }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: smoke
  namespace: default
spec:
  replicas: 1
  serviceName: smoke
  selector: { matchLabels: { app: smoke } }
  template:
    metadata:
      labels: { app: smoke }
    spec:
      terminationGracePeriodSeconds: 5
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: { type: RuntimeDefault }
      containers:
      - name: server
        image: ` + image + `
        imagePullPolicy: Never
        ports: [{ containerPort: 8080 }]
        readinessProbe:
          httpGet: { path: /healthz, port: 8080 }
          periodSeconds: 1
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: { drop: [ALL] }
`

// waitPodReady polls until the pod exists with a UID other than notUID, is not being
// deleted, and has condition Ready=True.
func (e *env) waitPodReady(name, notUID string, timeout time.Duration) e2e.Pod {
	e.t.Helper()
	return e.waitPod(name, timeout, "Ready", func(p e2e.Pod) bool {
		return p.Metadata.UID != notUID && p.Metadata.DeletionTimestamp == nil && p.Ready()
	})
}

// waitPod polls the pod every 100 ms until cond holds, failing after timeout.
func (e *env) waitPod(name string, timeout time.Duration, what string, cond func(e2e.Pod) bool) e2e.Pod {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		out, err := e.kubectlErr("get", "pod", name, "-n", namespace, "-o", "json")
		if err == nil {
			var p e2e.Pod
			if err := json.Unmarshal([]byte(out), &p); err != nil {
				e.t.Fatal(err)
			}
			if cond(p) {
				return p
			}
			last = fmt.Sprintf("uid %s, conditions %+v, containers %+v", p.Metadata.UID, p.Status.Conditions, p.Status.ContainerStatuses)
		} else {
			last = out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pod %s not %s within %s; last seen: %s", name, what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// expectHTTP polls http://addr/ until it answers with want; only addresses of the
// local cluster's own ranges are ever contacted.
func (e *env) expectHTTP(addr, want string, timeout time.Duration) {
	e.t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	if !isAllowed(net.ParseIP(host)) {
		e.t.Fatalf("refusing to contact %s: not inside the local cluster's ranges %v", addr, allowed)
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == want {
				return
			}
			last = fmt.Sprintf("HTTP %d %q", resp.StatusCode, body)
		} else {
			cancel()
			last = err.Error()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("http://%s/ did not answer %q within %s; last: %s", addr, want, timeout, last)
		}
		time.Sleep(200 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

func isAllowed(ip net.IP) bool {
	for _, c := range allowed {
		_, n, _ := net.ParseCIDR(c)
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

func (e *env) scriptCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(e.script, args...)
	cmd.Env = append(os.Environ(), "HUBFLEET_CLUSTER_DIR="+e.dir)
	cmd.Dir = e.root
	return cmd
}

// script1 runs hack/local-cluster.sh and fails the test on error; its progress
// output (stderr) goes to the test log.
func (e *env) script1(args ...string) string {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := e.scriptCmd(args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	e.t.Logf("hack/local-cluster.sh %s:\n%s", strings.Join(args, " "), stderr.String())
	if err != nil {
		e.t.Fatalf("hack/local-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, stdout.String())
	}
	return stdout.String()
}

func (e *env) scriptTolerant(args ...string) {
	out, err := e.scriptCmd(args...).CombinedOutput()
	e.t.Logf("hack/local-cluster.sh %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		e.t.Errorf("hack/local-cluster.sh %s: %v", strings.Join(args, " "), err)
	}
}

func (e *env) run(dir, name string, args ...string) {
	e.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (e *env) kubectlCmd(args ...string) *exec.Cmd {
	return exec.Command(e.kubectl, append([]string{"--kubeconfig", filepath.Join(e.dir, "kubeconfig")}, args...)...)
}

func (e *env) kubectlErr(args ...string) (string, error) {
	out, err := e.kubectlCmd(args...).CombinedOutput()
	return string(out), err
}

func (e *env) kubectlOut(args ...string) string {
	e.t.Helper()
	out, err := e.kubectlErr(args...)
	if err != nil {
		e.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) kubectlIn(stdin string, args ...string) {
	e.t.Helper()
	cmd := e.kubectlCmd(args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (e *env) dumpDiagnostics() {
	if e.kubectl == "" {
		return
	}
	for _, args := range [][]string{
		{"get", "nodes,pods,services,endpointslices", "-A", "-o", "wide"},
		{"describe", "pods", "-n", namespace},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		out, _ := e.kubectlErr(args...)
		e.t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	logs, _ := filepath.Glob(filepath.Join(e.dir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		e.t.Logf("----- %s (tail)\n%s", filepath.Base(l), b)
	}
}
