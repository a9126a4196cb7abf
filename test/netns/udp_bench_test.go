// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUDPBenchmark measures iperf3 TCP from client A (behind the WAN) to
// client B through the hub, over the UDP path and over the TLS path
// (hubfleet connect --udp=false) in turn for each WAN setting, in one run.
// hack/bench-udp.sh runs it (HUBFLEET_BENCH_UDP=1); docs/benchmarks-udp.md
// has the results.
func TestUDPBenchmark(t *testing.T) {
	if os.Getenv("HUBFLEET_BENCH_UDP") == "" {
		t.Skip("benchmark: run hack/bench-udp.sh (HUBFLEET_BENCH_UDP=1)")
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("the benchmark needs iperf3")
	}
	secs := os.Getenv("HUBFLEET_BENCH_SECONDS")
	if secs == "" {
		secs = "10"
	}
	w := newUDPWorld(t)
	w.startBin("iperf3 server", w.nsB, "/usr/bin/iperf3", "-s", "-B", addrB)
	eventually(t, 10*time.Second, "A pings B", func() bool { return w.ping(w.nsA, addrB) })

	type scenario struct {
		rtt  time.Duration
		loss float64
	}
	scenarios := []scenario{
		{20 * time.Millisecond, 0}, {20 * time.Millisecond, 0.005}, {20 * time.Millisecond, 0.02},
		{80 * time.Millisecond, 0}, {80 * time.Millisecond, 0.005}, {80 * time.Millisecond, 0.02},
		{40 * time.Millisecond, 0.01}, // the target point
	}
	// HUBFLEET_BENCH_ONLY: "RTT/loss%" settings instead ("40ms/1 20ms/0").
	if only := os.Getenv("HUBFLEET_BENCH_ONLY"); only != "" {
		scenarios = nil
		for _, f := range strings.Fields(only) {
			r, l, ok := strings.Cut(f, "/")
			rtt, err1 := time.ParseDuration(r)
			loss, err2 := strconv.ParseFloat(l, 64)
			if !ok || err1 != nil || err2 != nil {
				t.Fatalf("HUBFLEET_BENCH_ONLY: %q is not RTT/loss%%", f)
			}
			scenarios = append(scenarios, scenario{rtt, loss / 100})
		}
	}
	// HUBFLEET_BENCH_CC: the TCP congestion control of every namespace (the
	// inner TCP's in A and B, the TLS path's outer TCP's in A and the
	// member). Unset, they inherit the host's; either way it is logged.
	cc := os.Getenv("HUBFLEET_BENCH_CC")
	for _, ns := range []string{w.nsA, w.nsB, w.e.member, w.wanNS} {
		if cc != "" {
			w.sh(ns, "sysctl", "-qw", "net.ipv4.tcp_congestion_control="+cc)
		}
	}
	// HUBFLEET_BENCH_SYSCTLS: more settings for every namespace, separated
	// by ";" ("net.ipv4.tcp_wmem=4096 16384 16777216").
	for _, kv := range strings.Split(os.Getenv("HUBFLEET_BENCH_SYSCTLS"), ";") {
		if kv = strings.TrimSpace(kv); kv != "" {
			for _, ns := range []string{w.nsA, w.nsB, w.e.member, w.wanNS} {
				w.sh(ns, "sysctl", "-qw", kv)
			}
			t.Logf("sysctl %s in every namespace", kv)
		}
	}
	cc = strings.TrimSpace(w.sh(w.nsA, "sysctl", "-n", "net.ipv4.tcp_congestion_control"))
	t.Logf("TCP congestion control in the namespaces: %s", cc)
	// HUBFLEET_BENCH_MTUS: TAP MTUs (both clients') to compare in turn for
	// each setting, e.g. "1500 1419"; unset, the TAPs keep the default.
	mtus := []string{""}
	if m := strings.Fields(os.Getenv("HUBFLEET_BENCH_MTUS")); len(m) > 0 {
		mtus = m
	}
	setMTU := func(mtu string) {
		if mtu != "" {
			w.sh(w.nsA, "ip", "link", "set", "hf0", "mtu", mtu)
			w.sh(w.nsB, "ip", "link", "set", "hf0", "mtu", mtu)
		}
	}
	// HUBFLEET_BENCH_BASE_BIN: another hubfleet binary (a build of the
	// commit before a change) whose clients are measured in turn with this
	// tree's, for each setting and TAP MTU: before and after in one run.
	type variant struct{ name, bin string }
	variants := []variant{{"this tree", ""}}
	if b := os.Getenv("HUBFLEET_BENCH_BASE_BIN"); b != "" {
		variants = append(variants, variant{"base", b})
	}
	var rows []string
	gen := 0
	useClients := func(v variant) {
		if w.clientBin == v.bin {
			return
		}
		w.clientBin = v.bin
		w.b.signal(15)
		w.b.wait(t, 15*time.Second)
		gen++
		w.b = w.connect(fmt.Sprintf("client B (%d)", gen), w.nsB, 2, "bob", addrB)
		eventually(t, 60*time.Second, "B's TAP up", func() bool { return w.ping(w.nsB, addrB) })
	}
	restartA := func(udp bool) {
		w.a.signal(15)
		w.a.wait(t, 15*time.Second)
		if m := regexp.MustCompile(`UDP channel closed.* pmtu=(\d+)`).FindStringSubmatch(w.a.out.String()); m != nil {
			t.Logf("client A's datagram size at the end of the run: %s bytes", m[1])
		}
		gen++
		arg := "--udp=true"
		if !udp {
			arg = "--udp=false"
		}
		w.a = w.connect(fmt.Sprintf("client A (%d)", gen), w.nsA, 1, "alice", addrA, arg)
		eventually(t, 60*time.Second, "A pings B", func() bool { return w.ping(w.nsA, addrB) })
		if udp {
			eventually(t, 20*time.Second, "A's UDP path up", func() bool { up, _ := pathEvents(w.a); return up >= 1 })
		}
	}
	iperf := func() (float64, int) {
		out, err := w.e.inNS(w.nsA, 120*time.Second, "iperf3", "-c", addrB, "-t", secs, "-J")
		if err != nil {
			t.Logf("iperf3 failed: %v\n%s", err, out)
			return 0, 0
		}
		var r struct {
			End struct {
				SumSent struct {
					Retransmits int `json:"retransmits"`
				} `json:"sum_sent"`
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("iperf3 output: %v\n%s", err, out)
		}
		return r.End.SumReceived.BitsPerSecond / 1e6, r.End.SumSent.Retransmits
	}
	for _, s := range scenarios {
		w.wan(s.rtt, "-loss", fmt.Sprint(s.loss))
		for _, mtu := range mtus {
			for _, v := range variants {
				useClients(v)
				setMTU(mtu)
				res := map[bool]float64{}
				rtx := map[bool]int{}
				for _, udp := range []bool{true, false} {
					restartA(udp)
					setMTU(mtu)
					d0, s0, q0 := w.drops(), w.wanStats(), w.hubQueueFull()
					res[udp], rtx[udp] = iperf()
					hub := "?"
					if q1 := w.hubQueueFull(); q0 >= 0 && q1 >= 0 {
						hub = strconv.Itoa(q1 - q0)
					}
					t.Logf("drops during the run: %s; the member's hub dropped %s frames at a full port queue", w.drops().sub(d0), hub)
					t.Logf("WAN during the run: %s", w.wanStats().sub(s0))
					path := "TLS"
					if udp {
						path = "UDP"
					}
					t.Logf("RTT %v, loss %g %% each way, TAP MTU %s, clients %s, %s path: %.1f Mbit/s (inner TCP retransmits %d)", s.rtt, s.loss*100, orDefault(mtu), v.name, path, res[udp], rtx[udp])
				}
				ratio := "—"
				if res[false] > 0 {
					ratio = fmt.Sprintf("%.1f×", res[true]/res[false])
				}
				rows = append(rows, fmt.Sprintf("| %v | %g %% | %s | %s | %s | %.1f | %.1f | %s | %d / %d |", s.rtt, s.loss*100, cc, orDefault(mtu), v.name, res[true], res[false], ratio, rtx[true], rtx[false]))
			}
		}
	}
	table := "| RTT | loss each way | TCP CC | TAP MTU | clients | UDP path Mbit/s | TLS path Mbit/s | UDP / TLS | inner TCP retransmits UDP / TLS |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + strings.Join(rows, "\n")
	t.Logf("results:\n%s", table)
	if p := os.Getenv("HUBFLEET_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(table+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dropCounts are where frames can be lost on the machine rather than the
// WAN: the kernel's per-CPU input backlog (a TAP's writes land there) and UDP
// receive buffers in the three namespaces.
type dropCounts struct{ backlog, udpA, udpM, udpB, tapA, tapB int }

func (d dropCounts) sub(o dropCounts) dropCounts {
	return dropCounts{d.backlog - o.backlog, d.udpA - o.udpA, d.udpM - o.udpM, d.udpB - o.udpB, d.tapA - o.tapA, d.tapB - o.tapB}
}

func (d dropCounts) String() string {
	return fmt.Sprintf("input backlog %d, UDP receive buffers A %d member %d B %d, TAPs (frames the client did not read in time) A %d B %d",
		d.backlog, d.udpA, d.udpM, d.udpB, d.tapA, d.tapB)
}

// tapDropped is the TAP's tx_dropped in ns: frames the kernel had for the
// client to read and dropped because its queue was full.
func (w *udpWorld) tapDropped(ns string) int {
	out, err := w.e.inNS(ns, 10*time.Second, "cat", "/sys/class/net/hf0/statistics/tx_dropped")
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(out))
	return v
}

func (w *udpWorld) drops() dropCounts {
	var d dropCounts
	if b, err := os.ReadFile("/proc/net/softnet_stat"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 {
				var v int
				fmt.Sscanf(f[1], "%x", &v)
				d.backlog += v
			}
		}
	}
	d.udpA = w.snmpUDP(w.nsA, "RcvbufErrors")
	d.udpM = w.snmpUDP(w.e.member, "RcvbufErrors")
	d.udpB = w.snmpUDP(w.nsB, "RcvbufErrors")
	d.tapA, d.tapB = w.tapDropped(w.nsA), w.tapDropped(w.nsB)
	return d
}

func orDefault(mtu string) string {
	if mtu == "" {
		return "1500"
	}
	return mtu
}

// wanCounts are udpwan's counters for one direction (SIGUSR2).
type wanCounts struct{ frames, lost, queueDrops, sockDrops int }

// wanStats are udpwan's counts, A to member and member to A.
type wanStats [2]wanCounts

func (s wanStats) sub(o wanStats) wanStats {
	for i := range s {
		s[i] = wanCounts{s[i].frames - o[i].frames, s[i].lost - o[i].lost, s[i].queueDrops - o[i].queueDrops, s[i].sockDrops - o[i].sockDrops}
	}
	return s
}

func (s wanStats) String() string {
	var b strings.Builder
	for i, dir := range []string{"A to member", "member to A"} {
		c := s[i]
		pct := 0.0
		if c.frames > 0 {
			pct = 100 * float64(c.lost) / float64(c.frames)
		}
		fmt.Fprintf(&b, "%s%s: %d frames, %d lost by the emulated loss (%.2f %%), %d queue drops, %d dropped before udpwan read them",
			map[bool]string{true: "; "}[i > 0], dir, c.frames, c.lost, pct, c.queueDrops, c.sockDrops)
	}
	return b.String()
}

var wanStatsLine = regexp.MustCompile(`udpwan stats (a-to-b|b-to-a): frames (\d+) lost (\d+) queue-drops (\d+) socket-drops (\d+)`)

func (w *udpWorld) wanStats() wanStats {
	n := len(wanStatsLine.FindAllString(w.wanProc.out.String(), -1))
	w.wanProc.signal(syscall.SIGUSR2)
	var all [][]string
	eventually(w.e.t, 5*time.Second, "udpwan's counts", func() bool {
		all = wanStatsLine.FindAllStringSubmatch(w.wanProc.out.String(), -1)
		return len(all) >= n+2
	})
	var s wanStats
	for _, m := range all[len(all)-2:] {
		i := 0
		if m[1] == "b-to-a" {
			i = 1
		}
		v := make([]int, 4)
		for j := range v {
			v[j], _ = strconv.Atoi(m[2+j])
		}
		s[i] = wanCounts{v[0], v[1], v[2], v[3]}
	}
	return s
}

// hubQueueFull is the member's count of frames its hub dropped at a full
// egress queue (a port slower than what is sent to it, as a switch drops),
// from its metrics endpoint; -1 when they cannot be read.
func (w *udpWorld) hubQueueFull() int {
	out, err := w.e.inNS(w.e.member, 10*time.Second, "curl", "-s", "http://127.0.0.1:9090/metrics")
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "hubfleet_server_hub_drops_total{") && strings.Contains(line, `reason="queue_full"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}
