// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package bridge

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/internal/e2e"
	"github.com/hubfleet/hubfleet/internal/testutil"
)

// The test's LAN, all in network namespaces it creates (docs/bridge.md):
//
//	LAN host ns:  eth0 10.250.200.200/16 ─┐
//	switch ns:    Linux bridge br0 ◄──────┘ plus one veth per member pod
//	member pods:  the other end of their veth, moved into the pod's network
//	              namespace and named lan0 (spec.localBridge.interface), as a
//	              secondary interface (Multus, a macvlan on a node NIC) would be.
//
// Every member pod has the LAN; only the one in status.localBridge may use it.
const (
	lanIface = "lan0"
	// lanHost is inside the test-only overlay, like the clients' addresses.
	lanHost = "10.250.200.200"
	ctrSock = e2e.ClusterDir + "/run/containerd.sock"
)

type lan struct {
	t          testing.TB
	hostNS, sw string
	n          int
}

func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newLAN(t testing.TB) *lan {
	b := make([]byte, 2)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	l := &lan{t: t, hostNS: "hfe2e-lanhost-" + sfx, sw: "hfe2e-lansw-" + sfx}
	for _, ns := range []string{l.hostNS, l.sw} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		for _, key := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
			_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", key).Run()
		}
	}
	ipCmd(t, "-n", l.sw, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", l.sw, "link", "set", "br0", "up")
	ipCmd(t, "-n", l.sw, "link", "add", "host", "type", "veth", "peer", "name", "eth0", "netns", l.hostNS)
	ipCmd(t, "-n", l.sw, "link", "set", "host", "master", "br0", "up")
	ipCmd(t, "-n", l.hostNS, "addr", "add", lanHost+"/16", "dev", "eth0")
	ipCmd(t, "-n", l.hostNS, "link", "set", "eth0", "up")
	return l
}

// containerPID finds the process of a running container through containerd.
func containerPID(t testing.TB, containerID string) int {
	t.Helper()
	id := strings.TrimPrefix(containerID, "containerd://")
	out, err := exec.Command("ctr", "--address", ctrSock, "-n", "k8s.io", "tasks", "ls").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr tasks ls: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("container %s is not running:\n%s", id, out)
	return 0
}

// plug gives a member pod its lan0: a veth whose other end is a port of br0.
// The pod sandbox's network namespace survives container restarts, so the
// interface stays through the kills.
func (l *lan) plug(p e2e.Pod) {
	t := l.t
	t.Helper()
	if len(p.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container", p.Metadata.Name)
	}
	pid := containerPID(t, p.Status.ContainerStatuses[0].ContainerID)
	l.n++
	port, tmp := fmt.Sprintf("m%d", l.n), fmt.Sprintf("hfe2elan%d", l.n)
	ipCmd(t, "-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", tmp)
	ipCmd(t, "-n", l.sw, "link", "set", port, "master", "br0", "up")
	ipCmd(t, "-n", l.sw, "link", "set", tmp, "netns", strconv.Itoa(pid))
	if out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "link", "set", tmp, "name", lanIface).CombinedOutput(); err != nil {
		t.Fatalf("renaming the LAN interface in pod %s: %v: %s", p.Metadata.Name, err, out)
	}
	if out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "link", "set", lanIface, "up").CombinedOutput(); err != nil {
		t.Fatalf("raising the LAN interface in pod %s: %v: %s", p.Metadata.Name, err, out)
	}
}

// capture counts what the LAN host receives: broadcasts (a loop shows as a
// storm of them), frames carrying its own source MAC (a frame it sent that
// came back: a loop), and ICMP echo requests and replies seen more than once
// (a frame delivered twice: two bridges).
type capture struct {
	fd   int
	mac  net.HardwareAddr
	stop chan struct{}
	done chan struct{}

	mu                        sync.Mutex
	frames, broadcasts, loops int
	dups                      int
	// seen: when each ICMP echo (type, id, sequence) last arrived. Separate
	// ping processes may reuse an identifier, so only a repeat within a
	// second counts as a duplicate; two bridges deliver copies within
	// milliseconds.
	seen map[uint64]time.Time
}

func (l *lan) capture(t testing.TB) *capture { return captureOn(t, l.hostNS, "eth0") }

// captureOn counts what interface ifname in namespace ns receives (a VPN
// client's TAP: the echo replies it gets, and any of its own frames coming
// back).
func captureOn(t testing.TB, ns, ifname string) *capture {
	c := &capture{stop: make(chan struct{}), done: make(chan struct{}), seen: map[uint64]time.Time{}}
	err := testutil.InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c.mac = ifi.HardwareAddr
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		c.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return err
		}
		tv := unix.Timeval{Usec: 100000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0x0300, Ifindex: ifi.Index}) // htons(ETH_P_ALL)
	})
	if err != nil {
		t.Fatalf("capturing on %s in %s: %v", ifname, ns, err)
	}
	go c.loop()
	t.Cleanup(c.close)
	return c
}

func (c *capture) loop() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil || n < 14 {
			continue // timeout: look at stop
		}
		c.count(buf[:n])
	}
}

func (c *capture) count(f []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames++
	if f[0]&f[1]&f[2]&f[3]&f[4]&f[5] == 0xff {
		c.broadcasts++
	}
	if string(f[6:12]) == string(c.mac) {
		c.loops++
	}
	// ICMP echo over IPv4: key by type, identifier and sequence.
	if binary.BigEndian.Uint16(f[12:]) != 0x0800 || len(f) < 14+20+8 || f[14+9] != 1 {
		return
	}
	icmp := f[14+int(f[14]&0x0f)*4:]
	if len(icmp) < 8 || (icmp[0] != 0 && icmp[0] != 8) {
		return
	}
	key := uint64(icmp[0])<<32 | uint64(binary.BigEndian.Uint32(icmp[4:]))
	now := time.Now()
	if at, ok := c.seen[key]; ok && now.Sub(at) < time.Second {
		c.dups++
	}
	c.seen[key] = now
}

func (c *capture) counts() (frames, broadcasts, loops, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.broadcasts, c.loops, c.dups
}

func (c *capture) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.done
	unix.Close(c.fd)
}

// capEff reads the effective capabilities and the uid of a process.
func capEff(t testing.TB, pid int) (caps, uid string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "CapEff:":
			caps = f[1]
		case len(f) > 1 && f[0] == "Uid:":
			uid = f[1]
		}
	}
	return caps, uid
}

// capLine reads one line (such as "CapBnd:") of a process's status.
func capLine(t testing.TB, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == key {
			return f[1]
		}
	}
	return "?"
}
