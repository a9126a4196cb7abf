// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
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
	if only := os.Getenv("HUBFLEET_BENCH_ONLY"); only != "" {
		var keep []scenario
		for _, s := range scenarios {
			if strings.Contains(only, fmt.Sprintf("%v/%g", s.rtt, s.loss*100)) {
				keep = append(keep, s)
			}
		}
		scenarios = keep
	}
	var rows []string
	gen := 0
	restartA := func(udp bool) {
		w.a.signal(15)
		w.a.wait(t, 15*time.Second)
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
		res := map[bool]float64{}
		rtx := map[bool]int{}
		for _, udp := range []bool{true, false} {
			restartA(udp)
			d0 := w.drops()
			res[udp], rtx[udp] = iperf()
			t.Logf("drops during the run: %s", w.drops().sub(d0))
			path := "TLS"
			if udp {
				path = "UDP"
			}
			t.Logf("RTT %v, loss %g %% each way, %s path: %.1f Mbit/s (inner TCP retransmits %d)", s.rtt, s.loss*100, path, res[udp], rtx[udp])
		}
		ratio := "—"
		if res[false] > 0 {
			ratio = fmt.Sprintf("%.1f×", res[true]/res[false])
		}
		rows = append(rows, fmt.Sprintf("| %v | %g %% | %.1f | %.1f | %s | %d / %d |", s.rtt, s.loss*100, res[true], res[false], ratio, rtx[true], rtx[false]))
	}
	table := "| RTT | loss each way | UDP path Mbit/s | TLS path Mbit/s | UDP / TLS | inner TCP retransmits UDP / TLS |\n| --- | --- | --- | --- | --- | --- |\n" + strings.Join(rows, "\n")
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
type dropCounts struct{ backlog, udpA, udpM, udpB int }

func (d dropCounts) sub(o dropCounts) dropCounts {
	return dropCounts{d.backlog - o.backlog, d.udpA - o.udpA, d.udpM - o.udpM, d.udpB - o.udpB}
}

func (d dropCounts) String() string {
	return fmt.Sprintf("input backlog %d, UDP receive buffers A %d member %d B %d", d.backlog, d.udpA, d.udpM, d.udpB)
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
	return d
}
