// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command bench-tap measures the data plane on the path users use: a member
// listening on loopback inside a network namespace that holds only `lo`, two
// `hubfleet connect` clients in that namespace whose TAP devices are moved into
// two namespaces of their own, and iperf3 TCP between those two namespaces —
// every frame crosses a real TAP, a TLS session, the member's hub and the other
// TLS session and TAP. In the same run it measures plain veth between two
// namespaces (the machine's own ceiling) so results can be read as ratios on a
// shared, noisy machine, and any number of other hubfleet binaries or client
// flag sets (a baseline commit, a client without offloads) alternately with
// the first.
//
// Run it through hack/bench-tap.sh, which builds the binaries. Root is needed
// (namespaces, TAP devices). All traffic stays inside namespaces this program
// creates and deletes.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/certs"
)

// congestion is the -cc flag: iperf3's congestion control.
var congestion *string

// variant is one data path to measure: a hubfleet binary and extra flags for
// its clients (one or both).
type variant struct {
	Name    string
	Bin     string
	ArgsA   []string // extra `connect` flags of the sending client
	ArgsB   []string // of the receiving client
	isVeth  bool
	results map[int][]sample // streams → runs
	rtt     []float64
}

type sample struct {
	gbps   float64
	bytes  int64
	cpuSec float64 // member + both clients
	ctxsw  float64 // context switches of member + clients, voluntary and not
}

// ctxPerMB is the context switches per MB moved, per process (the mean of
// member and clients): each is a thread handing a core back, the cost that
// goroutine hand-offs add on a 2-core machine.
func (s sample) ctxPerMB() float64 {
	if s.bytes == 0 {
		return 0
	}
	return s.ctxsw / 3 / (float64(s.bytes) / 1e6)
}

// benchFailure is what fail panics with: main recovers it after the deferred
// cleanups of run have stopped every process and deleted the namespaces.
type benchFailure struct{}

func main() {
	code := 0
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(benchFailure); !ok {
					panic(r)
				}
				code = 1
			}
		}()
		run()
	}()
	os.Exit(code)
}

func run() {
	var (
		variants = flag.String("variants", "", "semicolon-separated NAME=BIN[,flagsA[,flagsB]] (flags space-separated), e.g. 'head=/tmp/hf;legacy=/tmp/hf,--offload=false,--offload=false'")
		runs     = flag.Int("runs", 3, "iperf3 runs per variant and stream count")
		secs     = flag.Int("time", 10, "seconds per iperf3 run")
		streams  = flag.String("streams", "1,4", "parallel TCP streams, comma-separated")
		keep     = flag.Bool("keep", false, "keep the work directory (logs of member and clients)")
		profile  = flag.String("perf", "", "directory: record `perf record -g` of member and clients during each variant's first 1-stream run (perf.<variant>.<process>.data)")
	)
	congestion = flag.String("cc", "", "congestion control of the iperf3 connections (iperf3 -C), e.g. reno; empty: the namespace's default (the host's)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fail("bench-tap needs root: network namespaces and TAP devices")
	}
	for _, tool := range []string{"ip", "iperf3", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			fail("bench-tap needs %s (apt-get install iproute2 iperf3 iputils-ping)", tool)
		}
	}
	var vs []*variant
	vs = append(vs, &variant{Name: "veth", isVeth: true})
	for _, spec := range strings.Split(*variants, ";") {
		if spec = strings.TrimSpace(spec); spec == "" {
			continue
		}
		name, rest, ok := strings.Cut(spec, "=")
		if !ok {
			fail("variant %q: want NAME=BIN[,flagsA[,flagsB]]", spec)
		}
		parts := strings.Split(rest, ",")
		v := &variant{Name: name, Bin: parts[0]}
		if len(parts) > 1 {
			v.ArgsA = strings.Fields(parts[1])
		}
		if len(parts) > 2 {
			v.ArgsB = strings.Fields(parts[2])
		}
		vs = append(vs, v)
	}
	if len(vs) == 1 {
		fail("give at least one hubfleet binary with -variants")
	}
	var streamCounts []int
	for _, s := range strings.Split(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail("-streams: %q is not a positive number", s)
		}
		streamCounts = append(streamCounts, n)
	}

	dir, err := os.MkdirTemp("", "bench-tap-")
	check(err)
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "bench-tap: work directory %s\n", dir)
	}
	w := newWorld(dir)
	defer w.cleanup()
	w.writeMemberConfig()

	load0 := loadavg()
	fmt.Fprintf(os.Stderr, "bench-tap: %d runs × %d s, streams %v, load %s\n", *runs, *secs, streamCounts, load0)
	// Variants alternate run by run, so a change in the machine's load hits
	// every variant alike.
	for _, v := range vs {
		v.results = map[int][]sample{}
	}
	for r := 0; r < *runs; r++ {
		for _, v := range vs {
			p := w.up(v)
			if r == 0 {
				v.rtt = append(v.rtt, p.ping())
			}
			for _, n := range streamCounts {
				var stopPerf func()
				if *profile != "" && r == 0 && n == streamCounts[0] && !v.isVeth {
					stopPerf = p.perf(*profile)
				}
				s := p.iperf(n, *secs)
				if stopPerf != nil {
					stopPerf()
				}
				fmt.Fprintf(os.Stderr, "bench-tap: run %d %-10s %d stream(s): %.2f Gbit/s, %.1f CPU s/GB\n", r+1, v.Name, n, s.gbps, s.cpuPerGB())
				v.results[n] = append(v.results[n], s)
			}
			p.down()
		}
	}

	fmt.Printf("\nmachine: %d cores, load before %s, after %s, %s\n\n", numCPU(), load0, loadavg(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Println("| path | streams | Gbit/s (median of runs) | runs | × veth | CPU s per GB (member + clients) | context switches per MB per process | ping RTT ms |")
	fmt.Println("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
	veth := map[int]float64{}
	for _, n := range streamCounts {
		veth[n] = median(vs[0].results[n], func(s sample) float64 { return s.gbps })
	}
	for _, v := range vs {
		for _, n := range streamCounts {
			ss := v.results[n]
			g := median(ss, func(s sample) float64 { return s.gbps })
			var all []string
			for _, s := range ss {
				all = append(all, fmt.Sprintf("%.2f", s.gbps))
			}
			cpu, cs := "—", "—"
			if !v.isVeth {
				cpu = fmt.Sprintf("%.2f", median(ss, sample.cpuPerGB))
				cs = fmt.Sprintf("%.1f", median(ss, sample.ctxPerMB))
			}
			rtt := "—"
			if len(v.rtt) > 0 && v.rtt[0] > 0 {
				rtt = fmt.Sprintf("%.3f", v.rtt[0])
			}
			fmt.Printf("| %s | %d | %.2f | %s | %.2f | %s | %s | %s |\n", v.Name, n, g, strings.Join(all, ", "), g/veth[n], cpu, cs, rtt)
		}
	}
}

func (s sample) cpuPerGB() float64 {
	if s.bytes == 0 {
		return 0
	}
	return s.cpuSec / (float64(s.bytes) / 1e9)
}

func median(ss []sample, f func(sample) float64) float64 {
	if len(ss) == 0 {
		return 0
	}
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// world is the run's namespaces and files.
type world struct {
	dir, sfx           string
	nsM, nsA, nsB      string
	caFile, config     string
	passFile           string
	namespaces         []string
	memberPort         int
	overlayA, overlayB string
}

func newWorld(dir string) *world {
	b := make([]byte, 3)
	rand.Read(b)
	w := &world{dir: dir, sfx: hex.EncodeToString(b), memberPort: 8443, overlayA: "10.99.0.1", overlayB: "10.99.0.2"}
	w.nsM, w.nsA, w.nsB = w.ns("m"), w.ns("a"), w.ns("b")
	return w
}

func (w *world) ns(role string) string {
	name := "hfbt" + role + "-" + w.sfx
	ip("netns", "add", name)
	w.namespaces = append(w.namespaces, name)
	ip("-n", name, "link", "set", "lo", "up")
	return name
}

func (w *world) cleanup() {
	// Deleting a namespace kills no process: stop ours first, then the
	// namespaces take their interfaces with them.
	for i := len(started) - 1; i >= 0; i-- {
		kill(started[i])
	}
	for _, ns := range w.namespaces {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (w *world) file(name string, data []byte) string {
	p := filepath.Join(w.dir, name)
	check(os.WriteFile(p, data, 0o600))
	return p
}

func (w *world) writeMemberConfig() {
	ca, err := certs.NewCA("hubfleet bench-tap CA", time.Hour)
	check(err)
	kp, err := ca.IssueServer([]string{"bench-member"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	check(err)
	caPEM, _, err := ca.PEM()
	check(err)
	w.caFile = w.file("ca.crt", caPEM)
	hash, err := auth.HashPassword("bench-pw")
	check(err)
	w.passFile = w.file("password", []byte("bench-pw\n"))
	cfg := map[string]any{
		"listen":   fmt.Sprintf("127.0.0.1:%d", w.memberPort),
		"certFile": w.file("server.crt", append(kp.CertPEM, caPEM...)),
		"keyFile":  w.file("server.key", kp.KeyPEM),
		"hubs":     []map[string]any{{"name": "bench", "type": "Dynamic", "users": map[string]string{"bench": hash}}},
	}
	y, err := yaml.Marshal(cfg)
	check(err)
	w.config = w.file("member.yaml", y)
}

// path is one variant brought up: its processes, or a veth pair.
type path struct {
	w       *world
	v       *variant
	procs   []*exec.Cmd
	iperfS  *exec.Cmd
	hfPIDs  []int
	dstAddr string
	vethA   string
}

func (w *world) up(v *variant) *path {
	p := &path{w: w, v: v, dstAddr: w.overlayB}
	if v.isVeth {
		p.vethA = "hfbv-" + w.sfx
		ip("-n", w.nsA, "link", "add", p.vethA, "type", "veth", "peer", "name", p.vethA+"p", "netns", w.nsB)
		ip("-n", w.nsA, "addr", "add", w.overlayA+"/24", "dev", p.vethA)
		ip("-n", w.nsB, "addr", "add", w.overlayB+"/24", "dev", p.vethA+"p")
		ip("-n", w.nsA, "link", "set", p.vethA, "up")
		ip("-n", w.nsB, "link", "set", p.vethA+"p", "up")
	} else {
		log := filepath.Join(w.dir, v.Name+"-member.log")
		m := p.start(log, v.Bin, "member", "--config", w.config)
		p.hfPIDs = append(p.hfPIDs, m.Process.Pid)
		waitFor("the member to listen", 20*time.Second, func() bool {
			return exec.Command("ip", "netns", "exec", w.nsM, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", w.memberPort)).Run() == nil
		})
		for i, side := range []struct {
			ns, addr string
			args     []string
		}{{w.nsA, w.overlayA, v.ArgsA}, {w.nsB, w.overlayB, v.ArgsB}} {
			tapName := fmt.Sprintf("hfbt%d", i)
			args := append([]string{"connect", "--server", fmt.Sprintf("127.0.0.1:%d", w.memberPort), "--hub", "bench", "--user", "bench",
				"--password-file", w.passFile, "--ca-file", w.caFile, "--tap", tapName}, side.args...)
			c := p.start(filepath.Join(w.dir, fmt.Sprintf("%s-client%d.log", v.Name, i)), v.Bin, args...)
			p.hfPIDs = append(p.hfPIDs, c.Process.Pid)
			// The client creates its TAP in the member's namespace; it is moved
			// to the client's own, where the kernel's TCP sees only it.
			waitFor("client TAP "+tapName, 20*time.Second, func() bool {
				return exec.Command("ip", "-n", w.nsM, "link", "show", tapName).Run() == nil
			})
			ip("-n", w.nsM, "link", "set", "dev", tapName, "netns", side.ns)
			ip("-n", side.ns, "addr", "add", side.addr+"/24", "dev", tapName)
			ip("-n", side.ns, "link", "set", "dev", tapName, "up")
		}
	}
	p.iperfS = exec.Command("ip", "netns", "exec", w.nsB, "iperf3", "-s")
	p.iperfS.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	check(p.iperfS.Start())
	started = append(started, p.iperfS)
	// The path is ready when a ping crosses it (the clients logged in, the
	// hub learned both MACs).
	waitFor(v.Name+" path to carry a ping", 30*time.Second, func() bool {
		return exec.Command("ip", "netns", "exec", w.nsA, "ping", "-c", "1", "-W", "1", w.overlayB).Run() == nil
	})
	return p
}

func (p *path) start(logFile, bin string, args ...string) *exec.Cmd {
	f, err := os.Create(logFile)
	check(err)
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.w.nsM, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	check(cmd.Start())
	p.procs = append(p.procs, cmd)
	started = append(started, cmd)
	return cmd
}

func (p *path) down() {
	kill(p.iperfS)
	for i := len(p.procs) - 1; i >= 0; i-- {
		kill(p.procs[i])
	}
	if p.v.isVeth {
		_ = exec.Command("ip", "-n", p.w.nsA, "link", "del", p.vethA).Run()
	}
	// A TAP moved to a client namespace vanishes with its client; wait for
	// that so the next variant can reuse the names.
	waitFor("TAP devices to go", 10*time.Second, func() bool {
		for _, ns := range []string{p.w.nsA, p.w.nsB, p.w.nsM} {
			out, _ := exec.Command("ip", "-n", ns, "-o", "link", "show").Output()
			if bytes.Contains(out, []byte("hfbt0")) || bytes.Contains(out, []byte("hfbt1")) {
				return false
			}
		}
		return true
	})
}

func kill(c *exec.Cmd) {
	if c == nil || c.Process == nil || c.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

var rttRE = regexp.MustCompile(`= [\d.]+/([\d.]+)/`)

func (p *path) ping() float64 {
	out, _ := exec.Command("ip", "netns", "exec", p.w.nsA, "ping", "-q", "-c", "40", "-i", "0.05", p.dstAddr).CombinedOutput()
	m := rttRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return f
}

type iperfJSON struct {
	End struct {
		SumReceived struct {
			Bytes         int64   `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

func (p *path) iperf(streams, secs int) sample {
	cpu0, cs0 := p.cpu(), p.ctxSwitches()
	var res iperfJSON
	deadline := time.Now().Add(30 * time.Second)
	for {
		args := []string{"netns", "exec", p.w.nsA, "iperf3", "-J", "-c", p.dstAddr,
			"-t", strconv.Itoa(secs), "-P", strconv.Itoa(streams)}
		if *congestion != "" {
			args = append(args, "-C", *congestion)
		}
		out, err := exec.Command("ip", args...).Output()
		res = iperfJSON{}
		_ = json.Unmarshal(out, &res)
		if err == nil && res.Error == "" {
			break
		}
		if time.Now().After(deadline) {
			fail("iperf3 over %s failed: %v %s", p.v.Name, err, res.Error)
		}
		// The server may not listen yet: iperf3 says so at once.
		time.Sleep(200 * time.Millisecond)
	}
	return sample{
		gbps:   res.End.SumReceived.BitsPerSecond / 1e9,
		bytes:  res.End.SumReceived.Bytes,
		cpuSec: p.cpu() - cpu0,
		ctxsw:  p.ctxSwitches() - cs0,
	}
}

// perf starts `perf record` on the member and each client and returns what
// stops them.
func (p *path) perf(dir string) (stop func()) {
	check(os.MkdirAll(dir, 0o755))
	var recs []*exec.Cmd
	for i, pid := range p.hfPIDs {
		role := "member"
		if i > 0 {
			role = fmt.Sprintf("client%d", i-1)
		}
		out := filepath.Join(dir, fmt.Sprintf("perf.%s.%s.data", p.v.Name, role))
		c := exec.Command("perf", "record", "-F", "499", "-g", "-o", out, "-p", strconv.Itoa(pid))
		c.Stdout, c.Stderr = nil, nil
		check(c.Start())
		recs = append(recs, c)
	}
	return func() {
		for _, c := range recs {
			_ = c.Process.Signal(syscall.SIGINT)
			_ = c.Wait()
		}
	}
}

// ctxSwitches is the context switches of the member's and clients' threads.
func (p *path) ctxSwitches() float64 {
	var total float64
	for _, pid := range p.hfPIDs {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
					n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
					total += n
				}
			}
		}
	}
	return total
}

// cpu is the CPU seconds the member and both clients used so far.
func (p *path) cpu() float64 {
	var total float64
	for _, pid := range p.hfPIDs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime 14, stime 15.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / 100 // USER_HZ is 100 on Linux
	}
	return total
}

func waitFor(what string, d time.Duration, ok func() bool) {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			fail("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ip(args ...string) {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		fail("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return bytes.Count(b, []byte("\nprocessor")) + 1
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

// started is every process this run started, for the cleanup after a failure.
var started []*exec.Cmd

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-tap: "+format+"\n", args...)
	panic(benchFailure{})
}
