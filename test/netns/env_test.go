// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/certs"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// env is one test's world: the hubfleet binary, network namespaces joined by
// veth pairs, certificates and a member config. Every address lives inside the
// namespaces, which are deleted at cleanup with everything in them.
type env struct {
	t      *testing.T
	dir    string
	bin    string
	suffix string
	member string   // the member's namespace
	nsList []string // every namespace created, for cleanup
	config string
	caFile string
	procs  []*proc
	mu     sync.Mutex
}

// Underlay addresses come from 198.18.0.0/15 (RFC 2544, reserved for network
// tests): client namespace i reaches the member at 198.18.i.1 from 198.18.i.2.
func memberAddr(i int) string { return fmt.Sprintf("198.18.%d.1", i) }

// requirePrivileges skips where the test cannot run — except in CI, which installs
// what the test needs, so a skip there would hide a broken install step.
func requirePrivileges(t *testing.T) {
	t.Helper()
	skip := t.Skip
	skipf := t.Skipf
	if os.Getenv("CI") != "" {
		skip, skipf = t.Fatal, t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("the network-namespace test needs root (network namespaces, TAP devices): run `sudo go test ./test/netns/`")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		skip("the network-namespace test needs /dev/net/tun: modprobe tun, or run the container with --device /dev/net/tun")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipf("the network-namespace test needs %s: apt-get install iproute2 iputils-ping", tool)
		}
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		skipf("`ip netns` does not work here (%v: %s): the test needs network namespaces", err, out)
	}
}

func newEnv(t *testing.T) *env {
	requirePrivileges(t)
	sfx := make([]byte, 3)
	rand.Read(sfx)
	e := &env{t: t, dir: t.TempDir(), suffix: hex.EncodeToString(sfx)}
	t.Cleanup(e.cleanup)
	e.bin = filepath.Join(e.dir, "hubfleet")
	build := exec.Command("go", "build", "-o", e.bin, "github.com/hubfleet/hubfleet")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building hubfleet: %v\n%s", err, out)
	}
	e.member = e.newNS("m")
	return e
}

// newNS creates a namespace with loopback up and registers it for cleanup.
func (e *env) newNS(role string) string {
	name := "hf" + role + "-" + e.suffix
	e.ip("netns", "add", name)
	e.mu.Lock()
	e.nsList = append(e.nsList, name)
	e.mu.Unlock()
	e.ip("-n", name, "link", "set", "lo", "up")
	return name
}

// clientNS creates client namespace number i (1..250), joined to the member's
// namespace by a veth pair on 198.18.i.0/24.
func (e *env) clientNS(role string, i int) string {
	ns := e.newNS(role)
	m, c := fmt.Sprintf("u%d", i), fmt.Sprintf("u%d", i)
	e.ip("-n", e.member, "link", "add", m, "type", "veth", "peer", "name", c, "netns", ns)
	e.ip("-n", e.member, "addr", "add", memberAddr(i)+"/24", "dev", m)
	e.ip("-n", ns, "addr", "add", fmt.Sprintf("198.18.%d.2/24", i), "dev", c)
	e.ip("-n", e.member, "link", "set", m, "up")
	e.ip("-n", ns, "link", "set", c, "up")
	return ns
}

func (e *env) ip(args ...string) { e.t.Helper(); testutil.IP(e.t, args...) }

// inNS runs a short command in ns and returns its combined output.
func (e *env) inNS(ns string, timeout time.Duration, args ...string) (string, error) {
	return testutil.InNS(ns, timeout, args...)
}

// writeConfig issues a CA and a member certificate for the member's underlay
// addresses ips and writes the member config with the given hubs (hub → user →
// password), passwords hashed with argon2id as `hubfleet hash-password` does.
func (e *env) writeConfig(hubs map[string]map[string]string, ips []string) {
	t := e.t
	ca, err := certs.NewCA("hubfleet netns test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []net.IP
	for _, s := range ips {
		addrs = append(addrs, net.ParseIP(s))
	}
	kp, err := ca.IssueServer([]string{"member-0"}, addrs, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	e.caFile = e.file("ca.crt", caPEM)
	type hub struct {
		Name  string            `json:"name"`
		Type  string            `json:"type"`
		Users map[string]string `json:"users"`
	}
	cfg := struct {
		Listen            string `json:"listen"`
		CertFile          string `json:"certFile"`
		KeyFile           string `json:"keyFile"`
		TicketKeyFile     string `json:"ticketKeyFile"`
		KeepaliveInterval string `json:"keepaliveInterval"`
		DeadTimeout       string `json:"deadTimeout"`
		Hubs              []hub  `json:"hubs"`
	}{
		Listen:   "0.0.0.0:8443",
		CertFile: e.file("server.crt", append(kp.CertPEM, caPEM...)),
		KeyFile:  e.file("server.key", kp.KeyPEM),
		// A ticket key that survives the member's restart, as the cluster's
		// Secret does, so returning clients resume without a password hash.
		TicketKeyFile:     e.file("ticket.key", key),
		KeepaliveInterval: "1s", DeadTimeout: "3s",
	}
	for name, users := range hubs {
		h := hub{Name: name, Type: "Dynamic", Users: map[string]string{}}
		for u, pw := range users {
			if h.Users[u], err = hashOnce(pw); err != nil {
				t.Fatal(err)
			}
		}
		cfg.Hubs = append(cfg.Hubs, h)
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.config = e.file("member.yaml", y)
}

func (e *env) file(name string, data []byte) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// proc is a hubfleet process inside a namespace. `ip netns exec` execs the
// command in place, so the PID is hubfleet's own and signals reach it directly.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	err  error
}

func (e *env) start(name, ns string, args ...string) *proc {
	e.t.Helper()
	p := &proc{name: name, out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, e.bin}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

func (p *proc) signal(sig syscall.Signal) { _ = syscall.Kill(-p.cmd.Process.Pid, sig) }

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("%s still running after %v; output:\n%s", p.name, within, p.out)
		return -1
	}
}

func (e *env) cleanup() {
	for _, p := range e.procs {
		if p.running() {
			p.signal(syscall.SIGKILL)
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			e.t.Errorf("%s (pid %d) did not die on SIGKILL", p.name, p.cmd.Process.Pid)
		}
		if e.t.Failed() {
			e.t.Logf("--- output of %s:\n%s", p.name, p.out)
		}
	}
	for _, ns := range e.nsList {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			e.t.Errorf("deleting namespace %s: %v: %s", ns, err, out)
		}
	}
}

// eventually polls cond until it holds, failing after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// hashOnce hashes each password once per test binary: a member ends the
// sessions of a user whose stored hash changed (a new salt is a new password
// to it), so a configuration written again must carry the same hashes.
func hashOnce(pw string) (string, error) {
	if h, ok := pwHashes.Load(pw); ok {
		return h.(string), nil
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return "", err
	}
	got, _ := pwHashes.LoadOrStore(pw, h)
	return got.(string), nil
}

var pwHashes sync.Map
