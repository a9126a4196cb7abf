// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Faults other than a crash, injected into one member pod of a test's own
// cluster: a frozen process (SIGSTOP, as a hung machine or a paused VM: its
// kernel still completes TCP handshakes and ACKs) and a pod cut off the
// network (iptables DROP inside the pod's own network namespace only).

func containerID(t testing.TB, p Pod) string {
	t.Helper()
	if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].ContainerID == "" {
		t.Fatalf("pod %s has no running container", p.Metadata.Name)
	}
	return strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
}

func ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", ClusterDir + "/run/containerd.sock", "-n", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

// SignalContainer sends sig (e.g. "SIGSTOP", "SIGCONT") to the pod's first
// container's process through containerd.
func SignalContainer(t testing.TB, p Pod, sig string) {
	t.Helper()
	id := containerID(t, p)
	if out, err := ctr("tasks", "kill", "-s", sig, id); err != nil {
		t.Fatalf("%s to container %s of pod %s: %v: %s", sig, id, p.Metadata.Name, err, out)
	}
}

// FreezeContainer stops the pod's container process (SIGSTOP) and returns
// the function that wakes it (SIGCONT), also run at the test's end so a
// failing test never leaves a stopped member behind.
func FreezeContainer(t testing.TB, p Pod) (thaw func()) {
	t.Helper()
	SignalContainer(t, p, "SIGSTOP")
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			if out, err := ctr("tasks", "kill", "-s", "SIGCONT", containerID(t, p)); err != nil {
				t.Errorf("SIGCONT to pod %s: %v: %s", p.Metadata.Name, err, out)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}

// containerPID is the host PID of the pod's container process, from which
// its network namespace is entered.
func containerPID(t testing.TB, p Pod) int {
	t.Helper()
	id := containerID(t, p)
	out, err := ctr("tasks", "ls")
	if err != nil {
		t.Fatalf("ctr tasks ls: %v: %s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err == nil && pid > 0 {
				return pid
			}
		}
	}
	t.Fatalf("no containerd task for container %s of pod %s:\n%s", id, p.Metadata.Name, out)
	return 0
}

var cutRules = [][]string{{"INPUT", "-j", "DROP"}, {"OUTPUT", "-j", "DROP"}}

// CutNetwork drops every packet into and out of the pod's network namespace
// (nothing outside it is touched) and returns the function that restores
// it, also run at the test's end. The member can then reach neither the API
// server, its peers nor its clients, and the kubelet's probe fails.
func CutNetwork(t testing.TB, p Pod) (restore func()) {
	t.Helper()
	pid := strconv.Itoa(containerPID(t, p))
	ipt := func(op string, rule []string) error {
		args := append([]string{"-t", pid, "-n", "iptables", "-w", op}, rule...)
		if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("nsenter %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, r := range cutRules {
		if err := ipt("-I", r); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			for _, r := range cutRules {
				if err := ipt("-D", r); err != nil {
					t.Errorf("restoring pod %s's network: %v", p.Metadata.Name, err)
				}
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

// OwnerSampler scrapes every member's own metrics (podIP:9090, the pods of
// the test's cluster) every interval and records the most members that held
// sessions of one hub at the same instant: for a dynamic hub, more than one
// is a split brain. A member that does not answer within the
// interval (frozen, cut off) counts as serving nothing at that instant: it
// cannot forward frames either.
type OwnerSampler struct {
	mu      sync.Mutex
	max     int
	maxAt   time.Time
	maxWho  []string
	samples int
	cancel  context.CancelFunc
	done    chan struct{}
}

// SampleOwners starts sampling which of c's members serve hub.
func (c *Cluster) SampleOwners(t testing.TB, hub string, interval time.Duration) *OwnerSampler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &OwnerSampler{cancel: cancel, done: make(chan struct{})}
	pods := c.MemberPods(t)
	want := fmt.Sprintf(`hub="%s",hub_namespace="%s",kind="client"`, hub, c.Namespace)
	hc := &http.Client{Timeout: interval}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var who []string
			for _, p := range pods {
				if p.Status.PodIP == "" {
					continue
				}
				wg.Add(1)
				go func(name, ip string) {
					defer wg.Done()
					if serves(ctx, hc, ip, want) {
						mu.Lock()
						who = append(who, name)
						mu.Unlock()
					}
				}(p.Metadata.Name, p.Status.PodIP)
			}
			wg.Wait()
			s.mu.Lock()
			s.samples++
			if len(who) > s.max {
				s.max, s.maxAt, s.maxWho = len(who), time.Now(), who
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// serves reports whether the member at ip holds client sessions of the hub
// (pkg/member's collector exports the count for every hub it serves): two
// members with sessions of one dynamic hub at once is the split brain the
// issue saw ("both members held a session of the same dynamic hub").
func serves(ctx context.Context, hc *http.Client, ip, want string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, "9090")+"/metrics", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "hubfleet_server_sessions{") && strings.Contains(line, want) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return err == nil && v > 0
		}
	}
	return false
}

// Stop ends the sampling.
func (s *OwnerSampler) Stop() {
	s.cancel()
	<-s.done
}

// Max is the most members seen serving the hub at once, when, and which.
func (s *OwnerSampler) Max() (n int, at time.Time, who []string, samples int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max, s.maxAt, s.maxWho, s.samples
}
