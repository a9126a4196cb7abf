// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// scrape GETs /metrics from h as Prometheus would and returns every sample as
// "name{label=value,...}" -> value, labels sorted by name.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			out[sampleKey(name, m.Label)] = value(m)
		}
	}
	return out
}

// helpTexts returns the HELP text of each metric family of a scrape.
func helpTexts(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	out := map[string]string{}
	for name, f := range fams {
		out[name] = f.GetHelp()
	}
	return out
}

func sampleKey(name string, labels []*dto.LabelPair) string {
	var kv []string
	for _, l := range labels {
		kv = append(kv, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return -1
}

// key builds a sampleKey from "label=value" pairs.
func key(name string, labels ...string) string {
	sort.Strings(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}

// want fails for each sample that is missing or has another value.
func want(t *testing.T, got map[string]float64, samples map[string]float64) {
	t.Helper()
	for k, v := range samples {
		g, ok := got[k]
		if !ok {
			t.Errorf("no sample %s", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

func hubLabels(hub string, more ...string) []string {
	return append([]string{"hub_namespace=", "hub=" + hub}, more...)
}

// TestMetricsOfARealMember scrapes a member serving real TLS sessions and
// checks that sessions, frames, bytes, drops, logins and licenses are exported
// and move with the traffic.
func TestMetricsOfARealMember(t *testing.T) {
	m := startMember(t, nil)
	var fenced atomic.Bool
	web := httptest.NewServer(MetricsHandler(m.srv, MetricsOptions{
		MeshLinks: func() int { return 2 },
		Fenced:    func() bool { return fenced.Load() },
	}))
	t.Cleanup(web.Close)

	got := scrape(t, web.URL)
	want(t, got, map[string]float64{
		key("hubfleet_server_sessions", hubLabels("alpha", "kind=client")...):          0,
		key("hubfleet_server_sessions", hubLabels("beta", "kind=bridge")...):           0,
		key("hubfleet_server_hubs", "type=Static"):                                     1,
		key("hubfleet_server_hubs", "type=Dynamic"):                                    1,
		key("hubfleet_server_hub_frames_total", hubLabels("alpha", "direction=in")...): 0,
		key("hubfleet_server_license_in_use", "kind=client"):                           0,
		key("hubfleet_server_relayed_sessions"):                                        0,
		key("hubfleet_server_mesh_links"):                                              2,
		key("hubfleet_server_fenced"):                                                  0,
	})
	if _, ok := got[key("hubfleet_server_license_allocation", "kind=client")]; ok {
		t.Error("an unlimited member exports a license allocation")
	}
	if _, ok := got["go_goroutines{}"]; !ok {
		t.Error("no Go runtime metrics")
	}
	info := false
	for k := range got {
		info = info || strings.HasPrefix(k, "hubfleet_server_info{") && strings.Contains(k, "member=member-test")
	}
	if !info {
		t.Error("no hubfleet_server_info naming the member")
	}

	a := m.connect(t, pw("alpha", "alice", "alice-pw"))
	b := m.connect(t, pw("alpha", "bob", "bob-pw"))
	if _, _, err := m.login(pw("alpha", "alice", "wrong")); loginErr(t, err).Code != protocol.BadCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	if _, _, err := m.login(pw("gamma", "alice", "alice-pw")); loginErr(t, err).Code != protocol.UnknownHub {
		t.Fatalf("unknown hub: %v", err)
	}
	bc := eth(broadcast, mac(1), "broadcast from a") // 30 bytes
	a.send(t, bc)
	b.expect(t, bc)
	uc := eth(mac(1), mac(2), "unicast from b to a") // 33 bytes
	b.send(t, uc)
	a.expect(t, uc)
	// Dropped: a runt, and a frame with a multicast source MAC. The unicast
	// after them arrives only once the hub has handled (and counted) both.
	a.send(t, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		eth(mac(2), [6]byte{0x01, 0, 0x5e, 0, 0, 1}, "multicast source"),
		eth(mac(2), mac(1), "after the drops"))
	b.expect(t, eth(mac(2), mac(1), "after the drops"))

	fenced.Store(true)
	got = scrape(t, web.URL)
	want(t, got, map[string]float64{
		key("hubfleet_server_sessions", hubLabels("alpha", "kind=client")...):                  2,
		key("hubfleet_server_sessions", hubLabels("beta", "kind=client")...):                   0,
		key("hubfleet_server_hub_frames_total", hubLabels("alpha", "direction=in")...):         5,
		key("hubfleet_server_hub_frames_total", hubLabels("alpha", "direction=out")...):        3,
		key("hubfleet_server_hub_bytes_total", hubLabels("alpha", "direction=out")...):         30 + 33 + 29,
		key("hubfleet_server_hub_flooded_frames_total", hubLabels("alpha")...):                 1,
		key("hubfleet_server_hub_macs", hubLabels("alpha")...):                                 2,
		key("hubfleet_server_hub_drops_total", hubLabels("alpha", "reason=runt")...):           1,
		key("hubfleet_server_hub_drops_total", hubLabels("alpha", "reason=invalid_source")...): 1,
		key("hubfleet_server_hub_drops_total", hubLabels("alpha", "reason=queue_full")...):     0,
		key("hubfleet_server_hub_drops_total", hubLabels("alpha", "reason=oversize")...):       0,
		key("hubfleet_server_hub_frames_total", hubLabels("beta", "direction=in")...):          0,
		key("hubfleet_server_license_in_use", "kind=client"):                                   2,
		key("hubfleet_server_logins_total", "result=ok"):                                       2,
		key("hubfleet_server_logins_total", "result=bad_credentials"):                          1,
		key("hubfleet_server_logins_total", "result=unknown_hub"):                              1,
		key("hubfleet_server_fenced"):                                                          1,
	})

	// Licenses from the configuration show as the member's allocation.
	cfg := baseConfig(t, m.dir)
	cfg.Licenses = &Licenses{Client: 5, Bridge: 1}
	if err := m.srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	// A session that ends releases its count and license.
	b.conn.Close()
	eventually(t, 5*time.Second, "bob's session to end", func() bool { return m.srv.Stats().Clients == 1 })
	want(t, scrape(t, web.URL), map[string]float64{
		key("hubfleet_server_license_allocation", "kind=client"):              5,
		key("hubfleet_server_license_allocation", "kind=bridge"):              1,
		key("hubfleet_server_license_in_use", "kind=client"):                  1,
		key("hubfleet_server_sessions", hubLabels("alpha", "kind=client")...): 1,
		// The names of the earlier releases, for one more release.
		key("hubfleet_server_licence_allocation", "kind=client"): 5,
		key("hubfleet_server_licence_allocation", "kind=bridge"): 1,
		key("hubfleet_server_licence_in_use", "kind=client"):     1,
		key("hubfleet_server_licence_in_use", "kind=bridge"):     0,
	})
	help := helpTexts(t, web.URL)
	for old, now := range map[string]string{
		"hubfleet_server_licence_in_use":     "hubfleet_server_license_in_use",
		"hubfleet_server_licence_allocation": "hubfleet_server_license_allocation",
	} {
		if want := "Deprecated: use " + now + " (removed in the next release)."; help[old] != want {
			t.Errorf("HELP of %s is %q; want %q", old, help[old], want)
		}
		if strings.HasPrefix(help[now], "Deprecated") {
			t.Errorf("HELP of %s: %q", now, help[now])
		}
	}

	resp, err := http.Get(web.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestSplitHubName(t *testing.T) {
	for in, want := range map[string]string{"tenant-a/corp": "tenant-a corp", "corp": " corp", "a/b/c": "a b/c"} {
		ns, name := splitHubName(in)
		if got := fmt.Sprint(ns, " ", name); got != want {
			t.Errorf("splitHubName(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkMetricsScrape: one /metrics scrape of a member serving 1000 hubs
// (13 series each), through the HTTP handler as Prometheus would read it.
func BenchmarkMetricsScrape(b *testing.B) {
	m := startMember(b, func(c *Config) {
		c.Hubs = nil
		for i := range 1000 {
			c.Hubs = append(c.Hubs, HubConfig{Name: fmt.Sprintf("tenant-%d/hub", i), Type: HubDynamic})
		}
	})
	h := MetricsHandler(m.srv, MetricsOptions{})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
