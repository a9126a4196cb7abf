// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	// OperatorNamespace and OperatorDeployment are where config/default puts the operator.
	OperatorNamespace  = "hubfleet-system"
	OperatorDeployment = "hubfleet-operator"
)

// kubectlTimeout bounds every kubectl call: a wedged API server must fail the
// test with a message, not hang it until go test's own timeout.
const kubectlTimeout = 60 * time.Second

// KubectlErr runs the cached kubectl against the local cluster and returns its
// combined output.
func KubectlErr(args ...string) (string, error) {
	return kubectlIn("", args...)
}

func kubectlIn(stdin string, args ...string) (string, error) {
	if kubectlBin == "" {
		return "", fmt.Errorf("kubectl is not set up: the test must run under e2e.Main (TestMain)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Kubectl runs kubectl and fails the test if it fails.
func Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := KubectlErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// KubectlStdin runs kubectl with stdin and fails the test if it fails.
func KubectlStdin(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, err := kubectlIn(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Apply applies YAML (one or more documents) server-side.
func Apply(t testing.TB, yaml string) {
	t.Helper()
	KubectlStdin(t, yaml, "apply", "--server-side", "--force-conflicts", "--field-manager=hubfleet-e2e", "-f", "-")
}

// GetJSON reads `kubectl get <args> -o json` into v.
func GetJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	if err := getJSON(v, args...); err != nil {
		t.Fatal(err)
	}
}

func getJSON(v any, args ...string) error {
	out, err := KubectlErr(append(append([]string{"get"}, args...), "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("decoding kubectl get %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// PollInterval is how often Eventually checks its condition.
const PollInterval = 100 * time.Millisecond

// Eventually polls cond every PollInterval until it returns true, and fails the
// test with what, the timeout and cond's last error when the deadline passes.
// It returns how long it took.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) time.Duration {
	t.Helper()
	d, err := Poll(timeout, PollInterval, cond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// Poll is Eventually without a test: it returns an error naming the last
// failure when cond did not hold within timeout.
func Poll(timeout, interval time.Duration, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return time.Since(start), nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return time.Since(start), fmt.Errorf("not within %v; last error: %v", timeout, last)
			}
			return time.Since(start), fmt.Errorf("not within %v", timeout)
		}
		time.Sleep(interval) // the polling interval of a condition with a deadline
	}
}

// DeployOperator applies config/default with the image set to the one this run
// imported (as `make run` does) and waits for the Deployment's rollout. Applying
// it again is harmless, so every test that needs the operator calls it.
func DeployOperator(t testing.TB) {
	t.Helper()
	manifests := KubectlStdin(t, "", "kustomize", Root+"/config/default")
	image := regexp.MustCompile(`(?m)^(\s*image:\s*)["']?hubfleet:dev["']?\s*$`)
	manifests = image.ReplaceAllString(manifests, "${1}"+Image)
	pull := regexp.MustCompile(`(?m)^(\s*imagePullPolicy:\s*)Always\s*$`)
	manifests = pull.ReplaceAllString(manifests, "${1}IfNotPresent")
	Apply(t, manifests)
	StartOperator(t)
}

// StopOperator scales the operator to zero and waits until its pods are gone.
func StopOperator(t testing.TB) {
	t.Helper()
	Kubectl(t, "scale", "-n", OperatorNamespace, "deployment/"+OperatorDeployment, "--replicas=0")
	Eventually(t, 90*time.Second, "operator pods gone after scaling to 0", func() (bool, error) {
		out, err := KubectlErr("get", "pods", "-n", OperatorNamespace, "-l", "app.kubernetes.io/component=operator", "-o", "name")
		return err == nil && strings.TrimSpace(out) == "", err
	})
}

// StartOperator scales the operator to one replica and waits for the rollout.
func StartOperator(t testing.TB) {
	t.Helper()
	Kubectl(t, "scale", "-n", OperatorNamespace, "deployment/"+OperatorDeployment, "--replicas=1")
	if out, err := KubectlErr("rollout", "status", "-n", OperatorNamespace, "deployment/"+OperatorDeployment, "--timeout=120s"); err != nil {
		pods, _ := KubectlErr("describe", "pods", "-n", OperatorNamespace)
		t.Fatalf("operator did not become ready: %v\n%s\n%s", err, out, pods)
	}
}

// Pod is what the tests read of a pod.
type Pod struct {
	Metadata struct {
		Name              string            `json:"name"`
		UID               string            `json:"uid"`
		Labels            map[string]string `json:"labels"`
		DeletionTimestamp *string           `json:"deletionTimestamp"`
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses []struct {
			ContainerID  string `json:"containerID"`
			RestartCount int    `json:"restartCount"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

// Ready reports the pod's Ready condition, false while it is being deleted.
func (p Pod) Ready() bool {
	if p.Metadata.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// Restarts is the sum of the containers' restart counts.
func (p Pod) Restarts() int {
	n := 0
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

// GetPod reads one pod.
func GetPod(t testing.TB, ns, name string) Pod {
	t.Helper()
	var p Pod
	GetJSON(t, &p, "pod", "-n", ns, name)
	return p
}

// WaitPod polls a pod until cond holds.
func WaitPod(t testing.TB, ns, name string, timeout time.Duration, what string, cond func(Pod) bool) Pod {
	t.Helper()
	var p Pod
	Eventually(t, timeout, fmt.Sprintf("pod %s/%s %s", ns, name, what), func() (bool, error) {
		var q Pod
		if err := getJSON(&q, "pod", "-n", ns, name); err != nil {
			return false, err
		}
		p = q
		return cond(q), fmt.Errorf("uid %s ready %v restarts %d phase %s", q.Metadata.UID, q.Ready(), q.Restarts(), q.Status.Phase)
	})
	return p
}

// KillContainer sends SIGKILL to the pod's (first) container through
// containerd, as a crash or an out-of-memory kill would end it.
func KillContainer(t testing.TB, p Pod) {
	t.Helper()
	if err := KillContainerErr(p); err != nil {
		t.Fatal(err)
	}
}

// KillContainerErr is KillContainer returning its error, for a kill run on
// another goroutine than the test's (which alone may call t.Fatal).
func KillContainerErr(p Pod) error {
	if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].ContainerID == "" {
		return fmt.Errorf("pod %s has no running container to kill", p.Metadata.Name)
	}
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	out, err := exec.Command("ctr", "--address", ClusterDir+"/run/containerd.sock", "-n", "k8s.io",
		"tasks", "kill", "-s", "SIGKILL", id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("killing container %s of pod %s: %v: %s", id, p.Metadata.Name, err, out)
	}
	return nil
}

// DeletePod deletes a pod without waiting for it to go.
func DeletePod(t testing.TB, ns, name string) {
	t.Helper()
	Kubectl(t, "delete", "pod", "-n", ns, name, "--wait=false")
}

// GetPodCount counts the pods matching a label selector in ns.
func GetPodCount(t testing.TB, ns, selector string) int {
	t.Helper()
	out := Kubectl(t, "get", "pods", "-n", ns, "-l", selector, "-o", "name")
	return len(strings.Fields(out))
}

// OperatorPod is the operator's running pod (the Deployment has one replica).
func OperatorPod(t testing.TB) Pod {
	t.Helper()
	var list struct {
		Items []Pod `json:"items"`
	}
	GetJSON(t, &list, "pods", "-n", OperatorNamespace, "-l", "app.kubernetes.io/component=operator")
	var live []Pod
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		t.Fatalf("want one operator pod, found %d", len(live))
	}
	return live[0]
}
