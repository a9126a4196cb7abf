// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
)

// BenchmarkWrongPasswordStorm measures what a storm of wrong-password logins
// (argon2id at the default 19 MiB cost, as for a real users Secret) does to the
// sessions already forwarding through the member: the frame latency between two
// clients before and during the storm, and the process's RSS before, at the end
// of the storm and after it. It runs the storm once whatever b.N is; run it with
// -benchtime=1x. Clients and member share this process and the machine's cores,
// so compare figures between builds on the same machine, not with a standalone
// member.
func BenchmarkWrongPasswordStorm(b *testing.B) {
	const (
		attempts    = 200
		attackers   = 20 // concurrent wrong-password connections
		probeFrames = 300
	)
	m := startMember(b, func(c *Config) {
		h, err := auth.HashPassword("eve-pw") // the default cost, not the tests' cheap one
		if err != nil {
			b.Fatal(err)
		}
		c.Hubs[0].Users["eve"] = h
	})
	a := m.connect(b, pw("alpha", "alice", "alice-pw"))
	c := m.connect(b, pw("alpha", "bob", "bob-pw"))
	// probe sends a frame from a to c and returns how long it took to arrive.
	seq := 0
	probe := func() time.Duration {
		seq++
		f := eth(mac(2), mac(1), fmt.Sprintf("probe %d", seq))
		start := time.Now()
		a.send(b, f)
		c.expect(b, f)
		return time.Since(start)
	}
	probe() // c's MAC is learnt from its first frame the other way
	c.send(b, eth(mac(1), mac(2), "learn"))
	a.expect(b, eth(mac(1), mac(2), "learn"))

	var quiet []time.Duration
	for range probeFrames {
		quiet = append(quiet, probe())
		time.Sleep(time.Millisecond) // a ping's pace, not a flood
	}
	rss0 := rssMiB(b, "VmRSS")

	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan struct{}, attempts)
	for range attempts {
		work <- struct{}{}
	}
	close(work)
	stormStart := time.Now()
	for range attackers {
		wg.Go(func() {
			for range work {
				if _, _, err := m.login(pw("alpha", "eve", "wrong")); err == nil {
					b.Error("wrong password accepted")
				}
			}
		})
	}
	stormDone := make(chan struct{})
	go func() { wg.Wait(); close(stormDone) }()
	var storm []time.Duration
	rssPeak := rss0
probing:
	for {
		select {
		case <-stormDone:
			break probing
		default:
		}
		storm = append(storm, probe())
		rssPeak = max(rssPeak, rssMiB(b, "VmRSS"))
		time.Sleep(time.Millisecond)
	}
	stormTime := time.Since(stormStart)
	b.StopTimer()
	rssEnd := rssMiB(b, "VmRSS")
	// How fast the memory comes back: observed, not waited for by a condition,
	// since the point is to measure it.
	time.Sleep(5 * time.Second)
	rss5s := rssMiB(b, "VmRSS")
	time.Sleep(25 * time.Second)
	rss30s := rssMiB(b, "VmRSS")

	q, s := pct(quiet, 50), pct(storm, 50)
	b.ReportMetric(q, "quiet-p50-ms")
	b.ReportMetric(pct(quiet, 99), "quiet-p99-ms")
	b.ReportMetric(s, "storm-p50-ms")
	b.ReportMetric(pct(storm, 99), "storm-p99-ms")
	b.ReportMetric(pct(storm, 100), "storm-max-ms")
	b.ReportMetric(stormTime.Seconds(), "storm-s")
	b.ReportMetric(rss0, "rss-before-MiB")
	b.ReportMetric(rssPeak, "rss-peak-MiB")
	b.ReportMetric(rssEnd, "rss-end-MiB")
	b.ReportMetric(rss5s, "rss-5s-MiB")
	b.ReportMetric(rss30s, "rss-30s-MiB")
}

// pct is the p-th percentile of ds in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)*p/100, len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// rssMiB reads a VmRSS-like field of /proc/self/status in MiB.
func rssMiB(b *testing.B, field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status: ", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
