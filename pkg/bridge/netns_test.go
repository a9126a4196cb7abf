// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package bridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/bridge"
	"github.com/hubfleet/hubfleet/pkg/certs"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/member"
)

// The world of the bridge tests, all inside network namespaces the test
// creates and deletes (addresses from 198.18.0.0/15, reserved for tests):
//
//	client ns: hubfleet connect, TAP hf0 198.18.77.20/24 ──TLS over veth (198.18.78.2 → 198.18.78.1)──┐
//	member ns: in-process member server; hub "lan" bridged by an AF_PACKET socket to lan0 (no address) ◄┘
//	LAN ns:    the LAN host, 198.18.77.10/24 on the other end of lan0
const (
	lanHost    = "198.18.77.10"
	clientAddr = "198.18.77.20"
	memberIP   = "198.18.78.1"
)

type world struct {
	t                      testing.TB
	dir, bin, sfx          string
	lanNS, memberNS, cliNS string
	srv                    *member.Server
	caFile, pwFile         string
	client                 *exec.Cmd
	clientOut              *testutil.SyncBuffer
	clientDone             chan struct{}
}

func requireRoot(t testing.TB) {
	t.Helper()
	skip := t.Skip
	if os.Getenv("CI") != "" {
		skip = t.Fatal
	}
	if os.Geteuid() != 0 {
		skip("the bridge netns test needs root (network namespaces, packet sockets, TAP): sudo go test ./pkg/bridge/")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		skip("the bridge netns test needs /dev/net/tun for the VPN client")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("the bridge netns test needs " + tool)
		}
	}
}

func (w *world) ip(args ...string) { w.t.Helper(); testutil.IP(w.t, args...) }

func (w *world) inNS(ns string, timeout time.Duration, args ...string) (string, error) {
	return testutil.InNS(ns, timeout, args...)
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// newWorld builds the namespaces, the member (hub "lan", clients client
// licenses, no bridge license) and connects the client. The bridge is not
// attached.
func newWorld(t testing.TB, clients int) *world {
	requireRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	w := &world{t: t, dir: t.TempDir(), sfx: hex.EncodeToString(b)}
	t.Cleanup(w.cleanup)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hubfleet-bridge-test-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "hubfleet")
		if out, err := exec.Command("go", "build", "-o", buildOnce.bin, "github.com/hubfleet/hubfleet").CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("building hubfleet: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	w.bin = buildOnce.bin
	w.lanNS, w.memberNS, w.cliNS = "hfbl-"+w.sfx, "hfbm-"+w.sfx, "hfbc-"+w.sfx
	for _, ns := range []string{w.lanNS, w.memberNS, w.cliNS} {
		w.ip("netns", "add", ns)
		w.ip("-n", ns, "link", "set", "lo", "up")
		// Quiet hosts: no IPv6 router solicitations or DAD in the counts.
		_, _ = w.inNS(ns, 5*time.Second, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	// The LAN: the host's eth0 in the LAN namespace, its peer lan0 in the
	// member namespace, up and without an address (what a member sees of a
	// LAN it bridges).
	w.ip("-n", w.lanNS, "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns", w.memberNS)
	w.ip("-n", w.lanNS, "addr", "add", lanHost+"/24", "dev", "eth0")
	w.ip("-n", w.lanNS, "link", "set", "eth0", "up")
	w.ip("-n", w.memberNS, "link", "set", "lan0", "up")
	// The underlay between the client and the member.
	w.ip("-n", w.memberNS, "link", "add", "up0", "type", "veth", "peer", "name", "up0", "netns", w.cliNS)
	w.ip("-n", w.memberNS, "addr", "add", memberIP+"/24", "dev", "up0")
	w.ip("-n", w.cliNS, "addr", "add", "198.18.78.2/24", "dev", "up0")
	w.ip("-n", w.memberNS, "link", "set", "up0", "up")
	w.ip("-n", w.cliNS, "link", "set", "up0", "up")

	ca, err := certs.NewCA("hubfleet bridge test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssueServer([]string{"member-0"}, []net.IP{net.ParseIP(memberIP)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &member.Config{
		Listen:   memberIP + ":8443",
		CertFile: w.file("server.crt", append(kp.CertPEM, caPEM...)),
		KeyFile:  w.file("server.key", kp.KeyPEM),
		// One client license and no bridge license: the local bridge is not
		// a session and needs none.
		Licenses: &member.Licenses{Client: clients, Bridge: 0},
		Hubs:     []member.HubConfig{{Name: "lan", Type: member.HubStatic, Users: map[string]string{"alice": hash}}},
	}
	w.srv, err = member.New(cfg, member.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := testutil.InNetns(w.memberNS, func() (err error) { ln, err = net.Listen("tcp", cfg.Listen); return err }); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.srv.Serve(ln) }()

	w.clientOut = &testutil.SyncBuffer{}
	w.caFile, w.pwFile = w.file("ca.crt", caPEM), w.file("pw", []byte("alice-pw\n"))
	w.client = exec.Command("ip", "netns", "exec", w.cliNS, w.bin, "connect", "--server", memberIP+":8443", "--hub", "lan",
		"--user", "alice", "--password-file", w.pwFile, "--ca-file", w.caFile,
		"--tap", "hf0", "--address", clientAddr+"/24")
	w.client.Stdout, w.client.Stderr = w.clientOut, w.clientOut
	w.client.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.client.Start(); err != nil {
		t.Fatal(err)
	}
	w.clientDone = make(chan struct{})
	go func() { _ = w.client.Wait(); close(w.clientDone) }()
	return w
}

func (w *world) file(name string, data []byte) string {
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) cleanup() {
	if w.client != nil && w.client.Process != nil {
		_ = syscall.Kill(-w.client.Process.Pid, syscall.SIGKILL)
		<-w.clientDone
		if w.t.Failed() {
			w.t.Logf("client output:\n%s", w.clientOut)
		}
	}
	if w.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = w.srv.Shutdown(ctx)
		cancel()
	}
	for _, ns := range []string{w.lanNS, w.memberNS, w.cliNS} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// attach opens lan0 in the member namespace and bridges it to hub "lan".
func (w *world) attach() *bridge.Bridge {
	w.t.Helper()
	var dev bridge.Device
	if err := testutil.InNetns(w.memberNS, func() (err error) { dev, err = bridge.Open("lan0", 0); return err }); err != nil {
		w.t.Fatal(err)
	}
	return bridge.Attach(w.srv.Hub("lan"), dev, "local-bridge:lan0")
}

func (w *world) ping(count int) (string, bool) {
	out, err := w.inNS(w.cliNS, 10*time.Second, "ping", "-c", fmt.Sprint(count), "-i0.05", "-W1", "-n", lanHost)
	return out, err == nil
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// echoServer listens on the LAN host and echoes every connection.
func (w *world) echoServer() string {
	w.t.Helper()
	var ln net.Listener
	if err := testutil.InNetns(w.lanNS, func() (err error) { ln, err = net.Listen("tcp", lanHost+":7"); return err }); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// dialFromClient opens a TCP connection from the client namespace.
func (w *world) dialFromClient(addr string) net.Conn {
	w.t.Helper()
	var c net.Conn
	if err := testutil.InNetns(w.cliNS, func() (err error) { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return err }); err != nil {
		w.t.Fatal(err)
	}
	return c
}

// echo sends n bytes through the echo server and checks they come back.
func echo(t testing.TB, c net.Conn, n int) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(data); errc <- err }()
	got := make([]byte, n)
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the echo differs from what was sent")
	}
}

func promiscuity(t testing.TB, w *world) string {
	out, err := w.inNS(w.memberNS, 5*time.Second, "ip", "-d", "link", "show", "lan0")
	if err != nil {
		t.Fatalf("ip link show lan0: %v: %s", err, out)
	}
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "promiscuity") {
			i := strings.Index(out, "promiscuity ")
			return strings.Fields(out[i:])[1]
		}
	}
	return "?"
}

func links(t testing.TB, w *world) string {
	out, err := w.inNS(w.memberNS, 5*time.Second, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	return strings.Join(names, " ")
}

// A VPN client reaches a host on the LAN through the member's local bridge
// by ping and TCP (both directions, with the LAN host's segmentation
// offload), with no duplicate reply; giving the bridge up removes what it
// added (the promiscuous membership; no device was created) and cuts the LAN
// off.
func TestBridgeJoinsHubToLAN(t *testing.T) {
	w := newWorld(t, 1)
	before := links(t, w)
	if p := promiscuity(t, w); p != "0" {
		t.Fatalf("lan0 promiscuity %s before the bridge", p)
	}
	br := w.attach()
	if p := promiscuity(t, w); p != "1" {
		t.Errorf("lan0 promiscuity %s while bridged, want 1", p)
	}
	waitFor(t, 30*time.Second, "client pings the LAN host through the bridge", func() bool { _, ok := w.ping(1); return ok })
	out, ok := w.ping(20)
	if !ok || strings.Contains(out, "DUP!") || !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("20 pings through the bridge: loss or duplicates:\n%s", out)
	}

	addr := w.echoServer()
	c := w.dialFromClient(addr)
	echo(t, c, 8<<20) // 8 MiB each way: the LAN host's TCP sends segmentation-offload frames
	c.Close()
	st := br.Device().Stats()
	t.Logf("bridge device: rx %d tx %d segmented %d dropped %d vlan-restored %d", st.RxFrames, st.TxFrames, st.Segmented, st.Dropped, st.VLANRestored)
	if stats := w.srv.Stats(); len(stats.Hubs) != 1 || stats.Hubs[0].Bridges != 0 || stats.Hubs[0].Clients != 1 {
		t.Errorf("member stats %+v: the local bridge must not count as a (licensed) session", stats.Hubs)
	}

	if err := br.Close(); err != nil {
		t.Fatalf("closing the bridge: %v", err)
	}
	if p := promiscuity(t, w); p != "0" {
		t.Errorf("lan0 promiscuity %s after the bridge was given up, want 0", p)
	}
	if after := links(t, w); after != before {
		t.Errorf("links in the member namespace changed: before %q, after %q", before, after)
	}
	if _, err := w.inNS(w.cliNS, 5*time.Second, "ip", "neigh", "flush", "dev", "hf0"); err != nil {
		t.Fatal(err)
	}
	if out, ok := w.ping(3); ok {
		t.Fatalf("the LAN host still answers after the bridge was given up:\n%s", out)
	}
}

// A tagged frame from the LAN keeps its 802.1Q tag through the bridge. The
// kernel moves a received tag into the packet's metadata before any packet
// socket sees it (in software as NICs do in hardware), so the bridge must put
// it back from PACKET_AUXDATA or the LAN's VLANs would merge into one.
func TestBridgeKeepsVLANTags(t *testing.T) {
	w := newWorld(t, 1)
	br := w.attach()
	defer br.Close()
	probe := w.srv.Hub("lan").Attach(hub.PortSession, "probe")
	defer probe.Close()

	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x77, 0x81, 0x00, 0x20, 100, 0x88, 0xb5}
	f = append(f, "vlan-probe"...)
	for len(f) < 64 {
		f = append(f, 0)
	}
	var fd int
	if err := testutil.InNetns(w.lanNS, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	dst := make([]*hub.Frame, 64)
	waitFor(t, 15*time.Second, "the tagged LAN frame reaches the hub with its tag", func() bool {
		if _, err := unix.Write(fd, f); err != nil {
			t.Fatalf("sending on the LAN: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		for {
			n, err := probe.Dequeue(ctx, dst)
			if err != nil {
				return false
			}
			found := false
			for _, fr := range dst[:n] {
				b := fr.B
				if len(b) > 28 && b[12] == 0x81 && b[13] == 0x00 && b[14] == 0x20 && b[15] == 100 && string(b[18:28]) == "vlan-probe" {
					found = true
				}
				fr.Release()
			}
			if found {
				return true
			}
		}
	})
	if st := br.Device().Stats(); st.VLANRestored == 0 {
		t.Errorf("device stats %+v: no tag counted as restored", st)
	}
}

// BenchmarkBridgeTCP is one TCP stream from the VPN client through TLS and
// the member's hub: sub-benchmark "bridge" to the LAN host through the
// AF_PACKET bridge; "client" to a second VPN client (its own TLS session and
// TAP) in the same run, the path the bridge replaces, for the ratio.
func BenchmarkBridgeTCP(b *testing.B) {
	w := newWorld(b, 2)
	br := w.attach()
	defer br.Close()
	waitFor(b, 30*time.Second, "client pings the LAN host", func() bool { _, ok := w.ping(1); return ok })

	// The second client: its own namespace and underlay to the member.
	peerNS := "hfbp-" + w.sfx
	w.ip("netns", "add", peerNS)
	b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", peerNS).Run() })
	w.ip("-n", peerNS, "link", "set", "lo", "up")
	w.ip("-n", w.memberNS, "link", "add", "up1", "type", "veth", "peer", "name", "up1", "netns", peerNS)
	w.ip("-n", w.memberNS, "addr", "add", "198.18.79.1/24", "dev", "up1")
	w.ip("-n", peerNS, "addr", "add", "198.18.79.2/24", "dev", "up1")
	w.ip("-n", w.memberNS, "link", "set", "up1", "up")
	w.ip("-n", peerNS, "link", "set", "up1", "up")
	// The member's certificate names memberIP only: reach it there through the
	// member namespace's routing.
	w.ip("-n", peerNS, "route", "add", memberIP+"/32", "via", "198.18.79.1")
	const peerAddr = "198.18.77.30"
	peer := exec.Command("ip", "netns", "exec", peerNS, w.bin, "connect", "--server", memberIP+":8443", "--hub", "lan",
		"--user", "alice", "--password-file", w.pwFile, "--ca-file", w.caFile, "--tap", "hf1", "--address", peerAddr+"/24")
	peer.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := peer.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Kill(-peer.Process.Pid, syscall.SIGKILL); _ = peer.Wait() })
	waitFor(b, 30*time.Second, "client pings the second client", func() bool {
		_, err := w.inNS(w.cliNS, 5*time.Second, "ping", "-c1", "-W1", "-n", peerAddr)
		return err == nil
	})

	for _, dst := range []struct{ name, ns, addr string }{{"bridge", w.lanNS, lanHost}, {"client", peerNS, peerAddr}} {
		b.Run(dst.name, func(b *testing.B) {
			var ln net.Listener
			if err := testutil.InNetns(dst.ns, func() (err error) { ln, err = net.Listen("tcp", dst.addr+":9"); return err }); err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- 0
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				got <- n
			}()
			c := w.dialFromClient(ln.Addr().String())
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			if n := <-got; n != int64(b.N)*int64(len(buf)) {
				b.Fatalf("received %d bytes, want %d", n, int64(b.N)*int64(len(buf)))
			}
		})
	}
	st := br.Device().Stats()
	b.Logf("bridge device: rx %d tx %d segmented %d dropped %d", st.RxFrames, st.TxFrames, st.Segmented, st.Dropped)
}
