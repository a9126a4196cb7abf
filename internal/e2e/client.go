// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// How clients reach the cluster (docs/e2e.md): `hubfleet connect` runs in the
// root network namespace, where 198.18.0.1 (NodePorts) and the pod IPs are
// on-link on hfbr0, so no route, veth or firewall rule has to be added for it.
// Its TAP device, once the client has created and brought it up, is moved into a
// network namespace of the test's own (`ip link set dev X netns N`): the open
// TAP file descriptor keeps working across the move, so frames flow between the
// session and the namespace's stack. Each namespace holds only its loopback and
// the TAP with an overlay address from OverlayNet, so pings and ARP between
// clients go nowhere but through the hub.

const (
	nsPrefix = "hfe2e-"
	// OverlayNet is the test-only subnet of the TAP devices; it exists only
	// inside the test's network namespaces.
	OverlayNet = "10.250.0.0/16"
)

// Overlay returns the overlay address 10.250.<i/250>.<i%250+1>.
func Overlay(i int) string { return fmt.Sprintf("10.250.%d.%d", i/250, i%250+1) }

var (
	overlayCIDR  = mustCIDR(OverlayNet)
	clusterCIDRs = []*net.IPNet{mustCIDR("198.18.0.0/24"), mustCIDR("198.19.0.0/24")}
)

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// ClientOptions start one `hubfleet connect`.
type ClientOptions struct {
	Cluster *Cluster
	Hub     string // the VirtualHub's name; the client logs in to <namespace>/<Hub>
	User    string
	// Server defaults to the Cluster's NodeIP:NodePort; a member pod's IP:8443
	// reaches that member directly.
	Server string
	// Address is the TAP's overlay address (inside OverlayNet), without prefix
	// length; empty leaves the TAP without an address.
	Address string
	NoRetry bool
	// Verbose adds -v (session details in the output).
	Verbose bool
	// UDP adds --udp (offer the UDP data channel).
	UDP bool
	// NoHandoff adds --handoff=false: a relayed session stays relayed frame
	// by frame by its entry member (protocol/handoff.go).
	NoHandoff bool
}

// Client is a running `hubfleet connect` whose TAP lives in its own namespace.
type Client struct {
	Name    string
	NS      string // network namespace
	Tap     string // TAP device name (in NS)
	Address string

	t    testing.TB
	cmd  *exec.Cmd
	out  *output
	done chan struct{}
	code int
}

var clientSeq struct {
	sync.Mutex
	n int
}

// StartClient starts a client and, once it has created its TAP, moves the TAP
// into a new namespace and gives it its overlay address. It does not wait for
// the session: use WaitConnected or Ping. Stopped and removed at cleanup.
func StartClient(t testing.TB, name string, o ClientOptions) *Client {
	t.Helper()
	c := PrepareClient(t, name, o)
	c.Start(t)
	return c
}

// PrepareClient builds a client without starting it (Start), so many can be
// started at the same instant.
func PrepareClient(t testing.TB, name string, o ClientOptions) *Client {
	t.Helper()
	server := o.Server
	if server == "" {
		server = o.Cluster.Server()
	}
	host, _, err := net.SplitHostPort(server)
	if err != nil || !inCluster(net.ParseIP(host)) {
		t.Fatalf("client %s: refusing server %q: only the local cluster's node IP and pod/service ranges are allowed", name, server)
	}
	if o.Address != "" && !overlayCIDR.Contains(net.ParseIP(o.Address)) {
		t.Fatalf("client %s: overlay address %q is outside the test-only %s", name, o.Address, OverlayNet)
	}
	pw, ok := o.Cluster.Passwords[o.User]
	if !ok {
		t.Fatalf("client %s: user %q has no password in the cluster spec", name, o.User)
	}
	clientSeq.Lock()
	clientSeq.n++
	id := fmt.Sprintf("%s%d", randHex(2), clientSeq.n)
	clientSeq.Unlock()
	c := &Client{Name: name, NS: nsPrefix + id, Tap: "hfe" + id, Address: o.Address, t: t,
		out: &output{}, done: make(chan struct{}), code: -1}
	args := []string{"connect", "--server", server, "--hub", o.Cluster.Namespace + "/" + o.Hub,
		"--user", o.User, "--password-file", pw, "--ca-fingerprint", o.Cluster.CAFingerprint, "--tap", c.Tap}
	if o.NoRetry {
		args = append(args, "--no-retry")
	}
	if o.Verbose {
		args = append(args, "-v")
	}
	if o.NoHandoff {
		args = append(args, "--handoff=false")
	}
	if o.UDP {
		args = append(args, "--udp")
	}
	c.cmd = exec.Command(HubfleetBin, args...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	// Its own process group (signals reach it alone), and dead with the test
	// binary if that dies without cleaning up.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	mustIP(t, "netns", "add", c.NS)
	t.Cleanup(c.cleanup)
	mustIP(t, "-n", c.NS, "link", "set", "lo", "up")
	// Nothing unprompted on the TAP (IPv6 router solicitations, MLD, DAD): a
	// frame seen there is one the hub delivered. Set before the TAP arrives, so
	// it takes the namespace's default.
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
		if out, err := c.exec(5*time.Second, "sysctl", "-qw", key); err != nil {
			t.Fatalf("sysctl %s in %s: %v: %s", key, c.NS, err, out)
		}
	}
	return c
}

// Start runs the client and moves its TAP into the namespace.
func (c *Client) Start(t testing.TB) {
	t.Helper()
	c.Launch(t)
	if err := c.AttachTAP(); err != nil {
		t.Fatal(err)
	}
}

// Launch starts the client process only; AttachTAP then moves its TAP. Many
// clients can be launched at the same instant this way.
func (c *Client) Launch(t testing.TB) {
	t.Helper()
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting client %s: %v", c.Name, err)
	}
	go func() {
		c.cmd.Wait()
		c.code = c.cmd.ProcessState.ExitCode()
		close(c.done)
	}()
}

// ErrClientExited is AttachTAP's error when the client ended before its TAP
// could be moved (its TAP is gone with it).
var ErrClientExited = errors.New("client exited")

// AttachTAP waits until the launched client has created and raised its TAP,
// then moves the TAP into the client's namespace, raises it there and gives it
// its overlay address. The client creates the TAP, sets it up and only then
// logs in; it touches the device by name only before that, so once the link is
// UP it is safe to move it.
func (c *Client) AttachTAP() error {
	_, err := Poll(30*time.Second, 20*time.Millisecond, func() (bool, error) {
		if c.Exited() {
			return true, nil // reported below
		}
		out, err := exec.Command("ip", "-o", "link", "show", "dev", c.Tap).CombinedOutput()
		return err == nil && strings.Contains(string(out), ",UP"), nil
	})
	if c.Exited() {
		return fmt.Errorf("client %s: %w with code %d: %s", c.Name, ErrClientExited, c.code, c.out)
	}
	if err != nil {
		return fmt.Errorf("client %s did not create and raise TAP %s: %v; output:\n%s", c.Name, c.Tap, err, c.out)
	}
	steps := [][]string{{"link", "set", "dev", c.Tap, "netns", c.NS}, {"-n", c.NS, "link", "set", "dev", c.Tap, "up"}}
	if c.Address != "" {
		steps = append(steps, []string{"-n", c.NS, "addr", "add", c.Address + "/16", "dev", c.Tap})
	}
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			if c.waitExited(time.Second) {
				return fmt.Errorf("client %s: %w with code %d: %s", c.Name, ErrClientExited, c.code, c.out)
			}
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func (c *Client) waitExited(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Code is the exit code once the client has exited (-1 before).
func (c *Client) Code() int {
	if !c.Exited() {
		return -1
	}
	return c.code
}

func (c *Client) cleanup() {
	if c.cmd.Process != nil && !c.Exited() {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	if c.t.Failed() {
		c.t.Logf("--- output of client %s:\n%s", c.Name, c.out)
	}
	if out, err := exec.Command("ip", "netns", "del", c.NS).CombinedOutput(); err != nil {
		c.t.Errorf("deleting namespace %s: %v: %s", c.NS, err, out)
	}
}

func inCluster(ip net.IP) bool {
	if ip == nil {
		return false
	}
	if ip.Equal(net.ParseIP(NodeIP)) {
		return true
	}
	for _, n := range clusterCIDRs {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func mustIP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// exec runs a short command inside the client's namespace.
func (c *Client) exec(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.NS}, args...)...).CombinedOutput()
	return string(out), err
}

// Exec runs a command inside the client's namespace (bounded by timeout).
func (c *Client) Exec(timeout time.Duration, args ...string) (string, error) {
	return c.exec(timeout, args...)
}

// Output is everything the client printed so far.
func (c *Client) Output() string { return c.out.String() }

// Exited reports whether the client process has ended.
func (c *Client) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// ExitCode waits up to within for the client to exit and returns its code.
func (c *Client) ExitCode(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(within):
		t.Fatalf("client %s still running after %v; output:\n%s", c.Name, within, c.out)
		return -1
	}
}

// Connected reports whether the client's last state line says it is connected.
func (c *Client) Connected() bool {
	if c.Exited() {
		return false
	}
	out := c.out.String()
	i := strings.LastIndex(out, "connected to hub ")
	if i < 0 {
		return false
	}
	rest := out[i:]
	return !strings.Contains(rest, "connection lost") && !strings.Contains(rest, "reconnecting in")
}

// SessionAge is how long the client's current session has lasted (0 when it
// is not connected), from the arrival of its "connected" status line.
func (c *Client) SessionAge() time.Duration {
	if !c.Connected() {
		return 0
	}
	l, ok := c.out.lastLine("connected to hub ")
	if !ok {
		return 0
	}
	return time.Since(l.at)
}

// WaitConnected waits until the client reports a session.
func (c *Client) WaitConnected(t testing.TB, within time.Duration) {
	t.Helper()
	Eventually(t, within, "client "+c.Name+" connected", func() (bool, error) {
		if c.Exited() {
			t.Fatalf("client %s exited with code %d:\n%s", c.Name, c.code, c.out)
		}
		return c.Connected(), nil
	})
}

// Ping sends one ping from the client's namespace to an overlay address and
// waits up to wait for the reply.
func (c *Client) Ping(dst string, wait time.Duration) error {
	if !overlayCIDR.Contains(net.ParseIP(dst)) {
		return fmt.Errorf("refusing to ping %s: outside the test-only overlay %s", dst, OverlayNet)
	}
	w := strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)
	out, err := c.exec(wait+5*time.Second, "ping", "-n", "-q", "-c1", "-W"+w, dst)
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", dst, c.Name, err, strings.TrimSpace(out))
	}
	return nil
}

// PingUntil pings dst until one reply arrives, failing after within; it returns
// how long it took.
func (c *Client) PingUntil(t testing.TB, within time.Duration, dst string) time.Duration {
	t.Helper()
	d, err := Poll(within, 0, func() (bool, error) {
		err := c.Ping(dst, 300*time.Millisecond)
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("%s never reached %s: %v\nclient output:\n%s", c.Name, dst, err, c.out)
	}
	return d
}

// PingCount sends n pings interval apart and returns how many were answered.
func (c *Client) PingCount(t testing.TB, dst string, n int, interval time.Duration) int {
	t.Helper()
	if !overlayCIDR.Contains(net.ParseIP(dst)) {
		t.Fatalf("refusing to ping %s: outside the test-only overlay %s", dst, OverlayNet)
	}
	out, _ := c.exec(time.Duration(n)*interval+10*time.Second, "ping", "-n", "-q", "-c", strconv.Itoa(n),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-W1", dst)
	m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping %s from %s: no summary in output:\n%s", dst, c.Name, out)
	}
	got, _ := strconv.Atoi(m[1])
	return got
}

// RxPackets reads the TAP's received-packets counter: every frame the hub
// delivered to this client.
func (c *Client) RxPackets(t testing.TB) uint64 {
	t.Helper()
	out, err := c.exec(5*time.Second, "cat", "/sys/class/net/"+c.Tap+"/statistics/rx_packets")
	if err != nil {
		t.Fatalf("reading %s's TAP counters: %v: %s", c.Name, err, out)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// NoFramesFromDuring runs exchange while capturing on the client's TAP and
// fails the test if any frame sent by one of sources (clients of another hub)
// arrived meanwhile: the window is the exchange itself, not a timer. Frames of
// the client's own hub (its peers' ARP probes, say) are logged, not failed.
func (c *Client) NoFramesFromDuring(t testing.TB, exchange func(), sources ...*Client) {
	t.Helper()
	var macs []net.HardwareAddr
	for _, s := range sources {
		macs = append(macs, s.MAC(t))
	}
	cp := c.StartCapture(t)
	before := c.RxPackets(t)
	exchange()
	after := c.RxPackets(t)
	frames := cp.Stop()
	if leaked := FramesFrom(frames, macs...); len(leaked) > 0 {
		var d []string
		for _, f := range leaked {
			d = append(d, DescribeFrame(f))
		}
		t.Fatalf("%s's TAP received %d frame(s) from another hub's clients:\n  %s", c.Name, len(leaked), strings.Join(d, "\n  "))
	}
	for _, f := range frames {
		t.Logf("%s received a frame of its own hub meanwhile: %s", c.Name, DescribeFrame(f))
	}
	t.Logf("%s: no frame from %d other-hub client(s) during the exchange (rx_packets %d → %d)", c.Name, len(sources), before, after)
}

// Stop sends SIGTERM and waits for the client to exit; it returns the exit code.
func (c *Client) Stop(t testing.TB) int {
	t.Helper()
	if !c.Exited() {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	}
	return c.ExitCode(t, 10*time.Second)
}
