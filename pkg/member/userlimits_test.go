// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/ratelimit"
)

func limitAlpha(u *v1alpha1.UserLimitsSpec) func(*Config) {
	return func(c *Config) { c.Hubs[0].UserLimits = u }
}

func int32p(v int32) *int32 { return &v }

// The (N+1)th session of a user on a hub is refused with a message that names
// the user, the hub, the limit and the setting to raise; another user is not
// affected; a session that ends frees its place; and a raised limit applies
// to the next login.
func TestMaxSessionsPerUser(t *testing.T) {
	m := startMember(t, limitAlpha(&v1alpha1.UserLimitsSpec{MaxSessionsPerUser: int32p(2)}))
	a1 := m.connect(t, pw("alpha", "alice", "alice-pw"))
	m.connect(t, pw("alpha", "alice", "alice-pw"))

	_, _, err := m.login(pw("alpha", "alice", "alice-pw"))
	le := loginErr(t, err)
	if le.Code != protocol.UserSessionLimit {
		t.Fatalf("third session refused with %v, want %v", le.Code, protocol.UserSessionLimit)
	}
	for _, want := range []string{`user "alice" already has 2 sessions on hub "alpha"`, "maxSessionsPerUser 2", "spec.userLimits.maxSessionsPerUser"} {
		if !strings.Contains(le.Error(), want) {
			t.Errorf("refusal %q does not say %q", le.Error(), want)
		}
	}
	if got := metricValue(t, m, "hubfleet_server_logins_total", "result", "user_session_limit"); got != 1 {
		t.Errorf("hubfleet_server_logins_total{result=user_session_limit} = %v, want 1", got)
	}

	// Another user of the hub, and the same user on another hub, log in.
	m.connect(t, pw("alpha", "bob", "bob-pw"))
	m.connect(t, pw("alpha", "bob", "bob-pw"))

	// An ended session frees its place.
	a1.conn.Close()
	eventually(t, 5*time.Second, "alice's closed session still counted", func() bool {
		return m.hubStats(t, "alpha").Clients == 3
	})
	m.connect(t, pw("alpha", "alice", "alice-pw"))
	if _, _, err := m.login(pw("alpha", "alice", "alice-pw")); loginErr(t, err).Code != protocol.UserSessionLimit {
		t.Fatalf("after the freed place was taken again: %v, want refused", err)
	}

	// Raising the limit admits the next login at once.
	cfg := baseConfig(t, m.dir)
	cfg.Hubs[0].UserLimits = &v1alpha1.UserLimitsSpec{MaxSessionsPerUser: int32p(3)}
	if err := m.srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	m.connect(t, pw("alpha", "alice", "alice-pw"))
}

// A hub without userLimits admits any number of sessions of one user.
func TestNoPerUserLimitByDefault(t *testing.T) {
	m := startMember(t, nil)
	for range 5 {
		m.connect(t, pw("alpha", "alice", "alice-pw"))
	}
}

func rateSpec(bits string, burst string) *v1alpha1.UserLimitsSpec {
	r := &v1alpha1.SessionRateSpec{BitsPerSecond: resource.MustParse(bits)}
	if burst != "" {
		q := resource.MustParse(burst)
		r.BurstBytes = &q
	}
	return &v1alpha1.UserLimitsSpec{SessionRate: r}
}

// flood sends frames from c until ctx ends; the writes block while the
// member paces the session, and fail once the connection closes.
func flood(ctx context.Context, c *protocol.Conn, frame []byte) {
	batch := make([][]byte, 32)
	for i := range batch {
		batch[i] = frame
	}
	for ctx.Err() == nil {
		if c.WriteFrames(batch) != nil {
			return
		}
	}
}

// measureRate waits until count passes from (at least) from to from+span and
// returns the rate of that stretch in bytes per second. It polls a counter;
// the time measured is the condition's, not a sleep's.
func measureRate(t *testing.T, count func() uint64, from, span uint64, within time.Duration) float64 {
	t.Helper()
	eventually(t, within, fmt.Sprintf("fewer than %d bytes passed", from), func() bool { return count() >= from })
	start, c0 := time.Now(), count()
	eventually(t, within, fmt.Sprintf("fewer than %d bytes passed in the measured stretch", span), func() bool { return count() >= c0+span })
	return float64(count()-c0) / time.Since(start).Seconds()
}

// A session sending as fast as it can is held near sessionRate into the hub:
// the member reads its TLS connection no faster than the rate, so the
// client's writes wait and nothing is dropped.
func TestSessionRateIngress(t *testing.T) {
	const bytesPerSecond = 1_000_000 // 8M
	m := startMember(t, limitAlpha(rateSpec("8M", "64Ki")))
	tx := m.connect(t, pw("alpha", "alice", "alice-pw"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go flood(ctx, tx.conn, eth(broadcast, mac(1), strings.Repeat("x", 1386)))

	// Past the burst and the first second, over two seconds' worth.
	in := func() uint64 { return m.hubStats(t, "alpha").Switch.BytesIn }
	rate := measureRate(t, in, bytesPerSecond, 2*bytesPerSecond, 20*time.Second)
	t.Logf("ingress %.0f B/s with a limit of %d B/s", rate, bytesPerSecond)
	if rate > 1.1*bytesPerSecond || rate < 0.7*bytesPerSecond {
		t.Fatalf("ingress %.0f B/s, want about %d", rate, bytesPerSecond)
	}
	if d := m.hubStats(t, "alpha").Switch.Drops; d.QueueFull+d.Oversize+d.AccessList > 0 {
		t.Fatalf("the member dropped frames of a paced session: %+v", d)
	}
}

// What the hub sends a session is held near sessionRate too: two senders
// (each paced to the rate) offer twice the rate to one receiver, which gets
// the rate; the excess is dropped by the receiver's shaper and counted.
func TestSessionRateEgress(t *testing.T) {
	const bytesPerSecond = 1_000_000
	m := startMember(t, limitAlpha(rateSpec("8M", "")))
	rx := m.connect(t, pw("alpha", "bob", "bob-pw"))
	rx.send(t, eth(broadcast, mac(9), "hello")) // the hub learns bob's MAC
	eventually(t, 5*time.Second, "the hub did not learn the receiver", func() bool {
		return m.hubStats(t, "alpha").Switch.MACs == 1
	})
	var got atomic.Uint64
	go func() {
		for f := range rx.rx {
			got.Add(uint64(len(f)))
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 2 {
		tx := m.connect(t, pw("alpha", "alice", "alice-pw"))
		go flood(ctx, tx.conn, eth(mac(9), mac(byte(1+i)), strings.Repeat("x", 1386)))
	}

	rate := measureRate(t, got.Load, bytesPerSecond, 2*bytesPerSecond, 20*time.Second)
	drops := m.srv.hubs["alpha"].rateDrops.Load()
	t.Logf("egress %.0f B/s with a limit of %d B/s, offered about twice; %d frames dropped by the shaper", rate, bytesPerSecond, drops)
	if rate > 1.1*bytesPerSecond || rate < 0.7*bytesPerSecond {
		t.Fatalf("egress %.0f B/s, want about %d", rate, bytesPerSecond)
	}
	if drops == 0 {
		t.Fatal("twice the rate offered and no frame dropped: the excess must have queued without bound")
	}
	if got := metricValue(t, m, "hubfleet_server_hub_drops_total", "reason", "session_rate"); got < float64(drops) {
		t.Errorf("hubfleet_server_hub_drops_total{reason=session_rate} = %v, want at least the %d counted", got, drops)
	}
}

// A rate far above what flows changes nothing: every frame arrives, none is
// dropped (the shaper's arithmetic must hold at the largest rate allowed).
func TestHighSessionRateDeliversAll(t *testing.T) {
	m := startMember(t, limitAlpha(rateSpec("1T", "1Gi")))
	rx := m.connect(t, pw("alpha", "bob", "bob-pw"))
	tx := m.connect(t, pw("alpha", "alice", "alice-pw"))
	hello := eth(broadcast, mac(9), "hello")
	rx.send(t, hello)
	tx.expect(t, hello)
	for i := range 200 {
		tx.send(t, eth(mac(9), mac(1), fmt.Sprintf("frame %d", i)))
	}
	for i := range 200 {
		rx.expect(t, eth(mac(9), mac(1), fmt.Sprintf("frame %d", i)))
	}
	if d := m.srv.hubs["alpha"].rateDrops.Load(); d != 0 {
		t.Fatalf("%d frames dropped under a 1T limit", d)
	}
}

// A session of a hub without sessionRate is not slowed: the same flood as
// TestSessionRateIngress passes far above the rate that test holds.
func TestNoSessionRateByDefault(t *testing.T) {
	m := startMember(t, nil)
	tx := m.connect(t, pw("alpha", "alice", "alice-pw"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go flood(ctx, tx.conn, eth(broadcast, mac(1), strings.Repeat("x", 1386)))
	in := func() uint64 { return m.hubStats(t, "alpha").Switch.BytesIn }
	if rate := measureRate(t, in, 1_000_000, 10_000_000, 20*time.Second); rate < 5_000_000 {
		t.Fatalf("an unlimited session passed %.0f B/s; want far above the 1 MB/s of the limited test", rate)
	}
}

// A member config file is checked as the CRD checks a VirtualHub.
func TestUserLimitsValidate(t *testing.T) {
	for _, c := range []struct {
		u    *v1alpha1.UserLimitsSpec
		want string
	}{
		{&v1alpha1.UserLimitsSpec{MaxSessionsPerUser: int32p(0)}, "hubs[0].userLimits.maxSessionsPerUser 0 must be at least 1"},
		{rateSpec("500k", ""), "sessionRate.bitsPerSecond 500k must be at least 1M"},
		{rateSpec("2T", ""), "must be at most 1T"},
		{rateSpec("10M", "100"), "sessionRate.burstBytes 100 must be from 1500"},
	} {
		cfg := baseConfig(t, t.TempDir())
		cfg.Hubs[0].UserLimits = c.u
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want %q", err, c.want)
		}
	}
	cfg := baseConfig(t, t.TempDir())
	cfg.Hubs[0].UserLimits = &v1alpha1.UserLimitsSpec{MaxSessionsPerUser: int32p(1), SessionRate: &v1alpha1.SessionRateSpec{BitsPerSecond: resource.MustParse("100M")}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkEndToEndLimited is BenchmarkEndToEnd with a sessionRate far above
// what loopback carries: the cost of a limit that never binds (a token
// bucket charge per frame), against BenchmarkEndToEnd's no limit at all.
func BenchmarkEndToEndLimited(b *testing.B) {
	for _, size := range []int{1400, 64} {
		b.Run(fmt.Sprintf("frame=%d/pairs=1", size), func(b *testing.B) {
			benchEndToEndEdit(b, size, 1, limitAlpha(rateSpec("1T", "1Gi")))
		})
	}
}

// metricValue is the member's metric name with the label (and hub alpha, when
// the metric has a hub label) as its collector exports it; -1 when absent.
func metricValue(t *testing.T, m *testMember, name, label, value string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(m.srv, MetricsOptions{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == label && l.GetValue() != value || l.GetName() == "hub" && l.GetValue() != "alpha" {
					continue series
				}
			}
			if s.GetCounter() != nil {
				return s.GetCounter().GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return -1
}

// BenchmarkFrameDone is the reader's per-frame step that the ingress limit
// hooks into: with no sessionRate it is the append it always was plus one
// atomic pointer load; with a rate that never binds, a bucket charge too.
func BenchmarkFrameDone(b *testing.B) {
	for _, limited := range []bool{false, true} {
		b.Run(fmt.Sprintf("limited=%v", limited), func(b *testing.B) {
			hs := &hubState{}
			if limited {
				hs.rate.Store(&ratelimit.Limit{BytesPerSecond: 1 << 40, Burst: 1 << 30})
			}
			se := &session{hs: hs, in: make([]*hub.Frame, 0, batchFrames)}
			f := hub.NewFrameSize(1400)
			f.SetLen(1400)
			b.ReportAllocs()
			for range b.N {
				se.next = f
				se.FrameDone()
				if len(se.in) == batchFrames {
					se.in = se.in[:0]
					se.inBucket.Refund(batchFrames * 1400)
				}
			}
		})
	}
}
