// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/version"
)

// Member-side Prometheus metrics (docs/metrics.md). They are read at scrape
// time from the counters the server keeps anyway — hub and port counters
// (pkg/hub), the license gate, the session counts per hub — so exporting them
// adds nothing to the per-frame path. The only counters added for them are per
// login (loginCounters) and per relayed session (Server.relaying).
//
// The names start with hubfleet_server_: the operator's hubfleet_member_*
// series are the cluster's view of the members (from their Lease reports);
// these are each member server's own, finer view.

// loginCounters count login outcomes by result code: one atomic add per login.
type loginCounters [16]atomic.Uint64

func (l *loginCounters) count(c protocol.Code) {
	i := int(c)
	if i >= len(l) {
		i = len(l) - 1 // never on the wire today; kept rather than lost
	}
	l[i].Add(1)
}

// loginResult is the label value of a code: Code.String in snake case.
func loginResult(c protocol.Code) string {
	return strings.ReplaceAll(c.String(), " ", "_")
}

// MetricsOptions adds what a cluster-mode member knows beyond its Server.
type MetricsOptions struct {
	// MeshLinks returns the number of live links to other members.
	MeshLinks func() int
	// Fenced reports whether the member stopped serving its dynamic hubs
	// because it could not renew its Lease.
	Fenced func() bool
	// Ready, if set, decides /readyz: nil means ready, an error says why not
	// (cluster mode: not listening yet, or fenced). Without it /readyz
	// answers like /healthz.
	Ready func() error
}

// collector is a prometheus.Collector over one Server.
type collector struct {
	srv  *Server
	opts MetricsOptions

	info, sessions, hubs, macs, frames, bytes, flooded, drops *prometheus.Desc
	licInUse, licAlloc, logins, relayed, meshLinks, fenced    *prometheus.Desc
	handoffs                                                  *prometheus.Desc
	// oldLicInUse and oldLicAlloc are the same series under the names of the
	// earlier releases (hubfleet_server_licence_*), exported for one more
	// release so dashboards and alerts can move; removed in the next.
	oldLicInUse, oldLicAlloc                           *prometheus.Desc
	dhcpPool, dhcpInUse, dhcpQuarantined, dhcpMessages *prometheus.Desc
	aclDrops                                           *prometheus.Desc
	udp                                                udpDescs
}

// NewCollector returns a prometheus.Collector exporting srv's sessions, hubs,
// switch counters, licenses and logins.
func NewCollector(srv *Server, opts MetricsOptions) prometheus.Collector {
	hub := []string{"hub_namespace", "hub"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hubfleet_server_"+name, help, labels, nil)
	}
	return &collector{
		srv: srv, opts: opts,
		info:        d("info", "Always 1; labels name the member and its build.", "member", "version", "commit"),
		sessions:    d("sessions", "Sessions on this member by hub and kind (client or bridge), relayed-in sessions included.", append(hub, "kind")...),
		hubs:        d("hubs", "Hub instances served by this member, by hub type.", "type"),
		macs:        d("hub_macs", "MAC table entries of the hub's switch on this member.", hub...),
		frames:      d("hub_frames_total", "Frames the hub's switch received (in) from and handed (out) to its ports: sessions, bridges and mesh peers. A flooded frame counts once per port it is handed to.", append(hub, "direction")...),
		bytes:       d("hub_bytes_total", "Bytes of hubfleet_server_hub_frames_total.", append(hub, "direction")...),
		flooded:     d("hub_flooded_frames_total", "Broadcast, multicast and unknown-unicast frames the hub flooded.", hub...),
		drops:       d("hub_drops_total", "Frames the hub did not deliver, by reason: queue_full (a port's egress queue was full), oversize, runt, invalid_source, access_list (the session's access list dropped it), session_rate (the receiving session's spec.userLimits.sessionRate shaper dropped it: more than 100 ms of its rate was waiting); mac_table_full counts frames whose source MAC was not learned (they were still forwarded).", append(hub, "reason")...),
		licInUse:    d("license_in_use", "Connection licenses held by this member's sessions, by kind.", "kind"),
		licAlloc:    d("license_allocation", "Connections of each kind this member may admit (its share of the cluster's licenses); absent while unlimited.", "kind"),
		oldLicInUse: d("licence_in_use", "Deprecated: use hubfleet_server_license_in_use (removed in the next release).", "kind"),
		oldLicAlloc: d("licence_allocation", "Deprecated: use hubfleet_server_license_allocation (removed in the next release).", "kind"),
		logins:      d("logins_total", "Logins decided by this member, by result (ok or the refusal code). A relayed login is counted by the member that owns the hub.", "result"),
		relayed:     d("relayed_sessions", "Sessions this member accepted as entry and relays over the member mesh to the member that holds their hub."),
		handoffs:    d("handoffs_total", "Relayed logins this member, as the hub's owner, took over from their entry member (CapHandoff): the client's TLS session ends here and the entry only copies bytes."),
		meshLinks:   d("mesh_links", "Live member-mesh links to other members."),
		fenced:      d("fenced", "1 while the member does not serve its dynamic hubs because it could not renew its Lease in time."),
		// Only hubs whose DHCP server runs on this member have these series.
		dhcpPool:        d("dhcp_pool_addresses", "Addresses the hub's DHCP server leases (rangeStart+1 to rangeEnd).", hub...),
		dhcpInUse:       d("dhcp_leases", "Bound, unexpired leases of the hub's DHCP server.", hub...),
		dhcpQuarantined: d("dhcp_quarantined_addresses", "Pool addresses not handed out because a host answered an ARP probe for them or a client declined them.", hub...),
		udp:             newUDPDescs(d),
		aclDrops:        d("access_list_drops_total", "Frames the hub's access list dropped at this member's ingress, by rule name; rule=\"(default)\" counts the list's default action. Counting starts again when the list changes.", append(hub, "rule")...),
		dhcpMessages:    d("dhcp_replies_total", "Replies of the hub's DHCP server by type (offer, ack, nak); learned counts renewals of leases the server had no record of (after a move), acknowledged after a probe.", append(hub, "type")...),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.sessions, c.hubs, c.macs, c.frames, c.bytes, c.flooded,
		c.drops, c.licInUse, c.licAlloc, c.oldLicInUse, c.oldLicAlloc, c.logins, c.relayed, c.handoffs, c.dhcpPool, c.dhcpInUse, c.dhcpQuarantined, c.dhcpMessages, c.aclDrops} {
		ch <- d
	}
	c.udp.describe(ch)
	if c.opts.MeshLinks != nil {
		ch <- c.meshLinks
	}
	if c.opts.Fenced != nil {
		ch <- c.fenced
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	st := c.srv.Stats()
	gauge(c.info, 1, st.Name, version.Version, version.Commit)

	types := map[string]int{HubStatic: 0, HubDynamic: 0}
	rateDrops := c.srv.rateDrops()
	for _, h := range st.Hubs {
		types[h.Type]++
		ns, name := splitHubName(h.Name)
		gauge(c.sessions, float64(h.Clients), ns, name, "client")
		gauge(c.sessions, float64(h.Bridges), ns, name, "bridge")
		sw := &h.Switch
		gauge(c.macs, float64(sw.MACs), ns, name)
		counter(c.frames, sw.FramesIn, ns, name, "in")
		counter(c.frames, sw.FramesOut, ns, name, "out")
		counter(c.bytes, sw.BytesIn, ns, name, "in")
		counter(c.bytes, sw.BytesOut, ns, name, "out")
		counter(c.flooded, sw.Flooded, ns, name)
		counter(c.drops, sw.Drops.QueueFull, ns, name, "queue_full")
		counter(c.drops, sw.Drops.MACTableFull, ns, name, "mac_table_full")
		counter(c.drops, sw.Drops.Oversize, ns, name, "oversize")
		counter(c.drops, sw.Drops.Runt, ns, name, "runt")
		counter(c.drops, sw.Drops.InvalidSource, ns, name, "invalid_source")
		counter(c.drops, sw.Drops.AccessList, ns, name, "access_list")
		counter(c.drops, rateDrops[h.Name], ns, name, "session_rate")
	}
	for t, n := range types {
		gauge(c.hubs, float64(n), t)
	}
	for hubName, rules := range c.srv.aclDrops() {
		ns, name := splitHubName(hubName)
		for _, r := range rules {
			counter(c.aclDrops, r.n, ns, name, r.rule)
		}
	}
	for hubName, d := range c.srv.dhcpStats() {
		ns, name := splitHubName(hubName)
		gauge(c.dhcpPool, float64(d.PoolSize), ns, name)
		gauge(c.dhcpInUse, float64(d.InUse), ns, name)
		gauge(c.dhcpQuarantined, float64(d.Quarantined), ns, name)
		counter(c.dhcpMessages, d.Offers, ns, name, "offer")
		counter(c.dhcpMessages, d.Acks, ns, name, "ack")
		counter(c.dhcpMessages, d.Naks, ns, name, "nak")
		counter(c.dhcpMessages, d.Learned, ns, name, "learned")
	}

	l := st.Licenses
	for _, d := range []*prometheus.Desc{c.licInUse, c.oldLicInUse} {
		gauge(d, float64(l.ClientInUse), "client")
		gauge(d, float64(l.BridgeInUse), "bridge")
	}
	for _, d := range []*prometheus.Desc{c.licAlloc, c.oldLicAlloc} {
		if l.ClientAllocation >= 0 {
			gauge(d, float64(l.ClientAllocation), "client")
		}
		if l.BridgeAllocation >= 0 {
			gauge(d, float64(l.BridgeAllocation), "bridge")
		}
	}

	for i := range c.srv.logins {
		// Results seen so far only: a scrape lists ok and the refusals that
		// happened, not all twelve codes at zero.
		if n := c.srv.logins[i].Load(); n > 0 {
			counter(c.logins, n, loginResult(protocol.Code(i)))
		}
	}
	gauge(c.relayed, float64(c.srv.relaying.Load()))
	counter(c.handoffs, c.srv.handoffs.Load())
	c.udp.collect(c.srv, ch)
	if c.opts.MeshLinks != nil {
		gauge(c.meshLinks, float64(c.opts.MeshLinks()))
	}
	if c.opts.Fenced != nil {
		v := 0.0
		if c.opts.Fenced() {
			v = 1
		}
		gauge(c.fenced, v)
	}
}

// splitHubName splits a cluster-mode hub name "<namespace>/<name>" into the
// hub_namespace and hub labels the operator's hubfleet_hub_sessions uses; a
// file-configured hub has no namespace.
func splitHubName(n string) (ns, name string) {
	if i := strings.IndexByte(n, '/'); i >= 0 {
		return n[:i], n[i+1:]
	}
	return "", n
}

// MetricsHandler serves /metrics (the member's metrics, plus the Go runtime's
// and the process's), /healthz (200 while the process serves HTTP) and
// /readyz (200 while opts.Ready returns nil, else 503 and the reason). The
// kubelet's readiness probe uses /readyz rather than a TCP connect: a frozen
// process's kernel still completes TCP handshakes, but only a running
// process answers HTTP.
func MetricsHandler(srv *Server, opts MetricsOptions) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv, opts),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
