// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Watch is a `kubectl get -w -o jsonpath=...` stream: every change of the
// watched field arrives as a line, stamped with the time it was read. One
// long-lived watch costs far less than polling with a kubectl process every
// few milliseconds, which on a small machine would itself slow down the
// failover being measured.
type Watch struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []WatchEvent
}

// WatchEvent is one line of a Watch.
type WatchEvent struct {
	At    time.Time
	Value string
}

// StartWatch watches one object: kind/name in ns, printing jsonpath for every
// change (the current value first).
func StartWatch(t testing.TB, ns, object, jsonpath string) *Watch {
	t.Helper()
	w := &Watch{}
	w.cmd = exec.Command(kubectlBin, "--kubeconfig", kubeconfig, "get", "-n", ns, object, "--watch",
		"-o", "jsonpath="+jsonpath+`{"\n"}`)
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("starting kubectl watch of %s/%s: %v", ns, object, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.mu.Lock()
			w.events = append(w.events, WatchEvent{At: time.Now(), Value: strings.TrimSpace(sc.Text())})
			w.mu.Unlock()
		}
		w.cmd.Wait()
	}()
	t.Cleanup(w.Stop)
	Eventually(t, 30*time.Second, fmt.Sprintf("watch of %s/%s delivers the current state", ns, object), func() (bool, error) {
		return len(w.Events()) > 0, nil
	})
	return w
}

// Events returns every line so far.
func (w *Watch) Events() []WatchEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]WatchEvent(nil), w.events...)
}

// Last is the latest value.
func (w *Watch) Last() string {
	ev := w.Events()
	if len(ev) == 0 {
		return ""
	}
	return ev[len(ev)-1].Value
}

// FirstAfter returns the first event after since whose value satisfies match.
func (w *Watch) FirstAfter(since time.Time, match func(string) bool) (WatchEvent, bool) {
	for _, e := range w.Events() {
		if e.At.After(since) && match(e.Value) {
			return e, true
		}
	}
	return WatchEvent{}, false
}

// WaitFor waits until an event after since satisfies match.
func (w *Watch) WaitFor(t testing.TB, since time.Time, within time.Duration, what string, match func(string) bool) WatchEvent {
	t.Helper()
	var ev WatchEvent
	Eventually(t, within, what, func() (bool, error) {
		var ok bool
		ev, ok = w.FirstAfter(since, match)
		return ok, fmt.Errorf("last value %q", w.Last())
	})
	return ev
}

// Stop ends the watch.
func (w *Watch) Stop() {
	if w.cmd.Process != nil {
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	}
}
