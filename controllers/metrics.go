// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// The operator's Prometheus metrics (docs/metrics.md). They are registered on
// controller-runtime's registry, so the manager's metrics endpoint serves
// them next to the workqueue and client metrics, with no second listener.
//
// Each family is set where a reconciler already computes the figure (the
// placement pass, the cluster status, the license totals), so metrics cost
// no extra API reads and never disagree with the statuses.

// Reason label of hubfleet_hub_placements_total for a hub's first placement;
// moves carry the lastReassignment reason (MemberFailed, LeaseExpired,
// MemberRemoved).
const placementInitial = "Initial"

const (
	kindClient = "client"
	kindBridge = "bridge"
)

var (
	clusterLabels = []string{"cluster_namespace", "cluster"}

	placementsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubfleet_hub_placements_total",
		Help: "Dynamic hubs placed on a member, by reason: Initial (first placement) or the reassignment reason (MemberFailed, LeaseExpired, MemberRemoved). Counted when the hub's status write succeeded.",
	}, append(clusterLabels, "reason"))

	reassignmentSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hubfleet_reassignment_seconds",
		Help: "Time from a member's failure signal (pod Ready=False transition, pod deletion, Lease expiry, or first observation when the API gives no time) to the successful status write of each hub moved off it.",
		// The target is 1 s; the benchmarks measure 0.1-2 s, and a held
		// reassignment or a slow API server can take tens of seconds.
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30},
	}, append(clusterLabels, "reason"))

	reassignmentHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_reassignment_held",
		Help: "1 while reassignment is held because more members failed than maxUnavailable allows, else 0.",
	}, clusterLabels)

	memberReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_member_ready",
		Help: "1 when the member is Ready (pod Ready and Lease fresh), else 0.",
	}, append(clusterLabels, "member"))

	memberSessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_member_sessions",
		Help: "Sessions on the member by kind (client, bridge), from the load report in its Lease.",
	}, append(clusterLabels, "member", "kind"))

	memberHubInstances = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_member_hub_instances",
		Help: "Hub instances assigned to the member (dynamic hubs plus static hub instances), from the hubs' statuses.",
	}, append(clusterLabels, "member"))

	hubSessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_hub_sessions",
		Help: "Sessions of an admitted hub by kind (client, bridge), summed over the members' Lease load reports.",
	}, []string{"hub_namespace", "hub", "kind"})

	licenseTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_license_total",
		Help: "Connections licensed to the cluster by kind, summed over its admitted ConnectionLicenses.",
	}, append(clusterLabels, "kind"))

	licenseInUse = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_license_in_use",
		Help: "Licensed connections in use in the cluster by kind, from the members' Lease load reports.",
	}, append(clusterLabels, "kind"))

	licenseAllocation = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hubfleet_license_allocation",
		Help: "Connections of a kind the member may admit (its entry in the licenses' status.allocations).",
	}, append(clusterLabels, "member", "kind"))
)

// Series owned by clusters: each pass replaces a cluster's whole set, so a
// removed member, hub or license kind loses its series instead of reporting
// its last value forever (and label cardinality does not grow with churn).
var (
	heldSeries        = newOwnedGauges(reassignmentHeld)
	memberReadySeries = newOwnedGauges(memberReady)
	memberSessSeries  = newOwnedGauges(memberSessions)
	memberHubSeries   = newOwnedGauges(memberHubInstances)
	hubSessSeries     = &hubGauges{owned: map[types.NamespacedName]map[string][2]int32{}}
	licTotalSeries    = newOwnedGauges(licenseTotal)
	licInUseSeries    = newOwnedGauges(licenseInUse)
	licAllocSeries    = newOwnedGauges(licenseAllocation)

	failures = &failureClock{at: map[types.NamespacedName]map[string]time.Time{}, firstSeen: map[types.NamespacedName]map[string]time.Time{}}
)

func init() {
	metrics.Registry.MustRegister(placementsTotal, reassignmentSeconds, reassignmentHeld,
		memberReady, memberSessions, memberHubInstances, hubSessions,
		licenseTotal, licenseInUse, licenseAllocation,
		// The license families under the names of the earlier releases, for
		// one more release so dashboards and alerts can move; removed in the
		// next.
		renamedGauges("hubfleet_licence_total", "hubfleet_license_total", licenseTotal, append(clusterLabels, "kind")),
		renamedGauges("hubfleet_licence_in_use", "hubfleet_license_in_use", licenseInUse, append(clusterLabels, "kind")),
		renamedGauges("hubfleet_licence_allocation", "hubfleet_license_allocation", licenseAllocation, append(clusterLabels, "member", "kind")))
}

// deprecatedGauges exports a GaugeVec's series a second time under an old
// name, with a HELP that names the new one. The values are read from vec at
// scrape time: the reconcilers set each figure once.
type deprecatedGauges struct {
	desc   *prometheus.Desc
	vec    *prometheus.GaugeVec
	labels []string
}

func renamedGauges(old, now string, vec *prometheus.GaugeVec, labels []string) prometheus.Collector {
	return &deprecatedGauges{
		desc:   prometheus.NewDesc(old, "Deprecated: use "+now+" (removed in the next release).", labels, nil),
		vec:    vec,
		labels: labels,
	}
}

func (d *deprecatedGauges) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *deprecatedGauges) Collect(ch chan<- prometheus.Metric) {
	series := make(chan prometheus.Metric)
	go func() {
		d.vec.Collect(series)
		close(series)
	}()
	for m := range series {
		var pb dto.Metric
		if m.Write(&pb) != nil || pb.Gauge == nil {
			continue
		}
		byName := make(map[string]string, len(pb.Label))
		for _, l := range pb.Label {
			byName[l.GetName()] = l.GetValue()
		}
		values := make([]string, len(d.labels))
		for i, n := range d.labels {
			values[i] = byName[n]
		}
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, pb.Gauge.GetValue(), values...)
	}
}

// ownedGauges tracks which series of a GaugeVec each cluster set last time.
type ownedGauges struct {
	vec   *prometheus.GaugeVec
	mu    sync.Mutex
	owned map[types.NamespacedName]map[string]gaugeSample
}

type gaugeSample struct {
	labels []string
	value  float64
}

func newOwnedGauges(vec *prometheus.GaugeVec) *ownedGauges {
	return &ownedGauges{vec: vec, owned: map[types.NamespacedName]map[string]gaugeSample{}}
}

// gaugeSet collects one pass's samples for replace.
type gaugeSet map[string]gaugeSample

func (s gaugeSet) add(v float64, labels ...string) {
	s[strings.Join(labels, "\xff")] = gaugeSample{labels: labels, value: v}
}

// replace makes set the cluster's series: new and changed values are set
// (unchanged ones are skipped: a placement pass over 10,000 hubs should not
// hash 20,000 label sets when nothing moved), and series the cluster no
// longer has are deleted.
func (g *ownedGauges) replace(cluster types.NamespacedName, set gaugeSet) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.owned[cluster]
	for k, s := range set {
		if o, ok := old[k]; !ok || o.value != s.value {
			g.vec.WithLabelValues(s.labels...).Set(s.value)
		}
	}
	for k, o := range old {
		if _, ok := set[k]; !ok {
			g.vec.DeleteLabelValues(o.labels...)
		}
	}
	if len(set) == 0 {
		delete(g.owned, cluster)
		return
	}
	g.owned[cluster] = set
}

func (g *ownedGauges) forget(cluster types.NamespacedName) { g.replace(cluster, nil) }

// failureClock remembers when each failed or removed member's failure began,
// per cluster, so each hub moved off it can observe the failover time.
type failureClock struct {
	mu sync.Mutex
	// at is cluster → member → failure signal time; firstSeen the operator's
	// own first observation of the failure.
	at        map[types.NamespacedName]map[string]time.Time
	firstSeen map[types.NamespacedName]map[string]time.Time
}

// timestampGranularity is the precision of metav1.Time (RFC 3339 seconds):
// a pod condition's lastTransitionTime or a deletionTimestamp is truncated
// to the second, so it may read up to 1 s earlier than the event.
const timestampGranularity = time.Second

// signalTime is when a failed member's failure began. The API's own
// timestamp is used when there is one (it is right even when the operator
// saw the failure late, e.g. after a restart), except that a whole-second
// timestamp within a second of our first observation is less precise than
// the observation itself: the watch delivers in milliseconds.
func signalTime(v *memberView, leaseDur time.Duration, first time.Time) time.Time {
	var ts time.Time
	precise := false
	switch {
	case v.FailReason == ReasonLeaseExpired && v.Lease != nil && v.Lease.Spec.RenewTime != nil:
		ts, precise = v.Lease.Spec.RenewTime.Add(leaseDur), true // MicroTime
	case v.Pod != nil && v.Pod.DeletionTimestamp != nil:
		// deletionTimestamp is when the grace period ends; the deletion was
		// requested that many seconds earlier.
		ts = v.Pod.DeletionTimestamp.Time
		if g := v.Pod.DeletionGracePeriodSeconds; g != nil {
			ts = ts.Add(-time.Duration(*g) * time.Second)
		}
	case v.Pod != nil:
		for _, c := range v.Pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
				ts = c.LastTransitionTime.Time
			}
		}
	}
	switch {
	case ts.IsZero(), !precise && first.Sub(ts) < timestampGranularity:
		return first
	case ts.Before(first):
		return ts
	}
	return first
}

// observe records the failure times of the cluster's failed members and of
// removed members still holding hubs, and forgets members that are up again.
func (f *failureClock) observe(cluster types.NamespacedName, ms *memberSet, holding map[string]bool, leaseDur time.Duration, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldFirst := f.firstSeen[cluster]
	first, at := map[string]time.Time{}, map[string]time.Time{}
	seen := func(name string) time.Time {
		t, ok := oldFirst[name]
		if !ok {
			t = now
		}
		first[name] = t
		return t
	}
	for i := range ms.Members {
		if v := &ms.Members[i]; v.Failed() {
			at[v.Name] = signalTime(v, leaseDur, seen(v.Name))
		}
	}
	// A member removed by a scale-down has no view: the first pass that finds
	// it gone while it still holds hubs is the signal.
	for name := range holding {
		if ms.byName(name) == nil {
			at[name] = seen(name)
		}
	}
	if len(at) == 0 {
		delete(f.at, cluster)
		delete(f.firstSeen, cluster)
		return
	}
	f.at[cluster], f.firstSeen[cluster] = at, first
}

func (f *failureClock) signal(cluster types.NamespacedName, member string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.at[cluster][member]
	return t, ok
}

func (f *failureClock) forget(cluster types.NamespacedName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.at, cluster)
	delete(f.firstSeen, cluster)
}

// observePlacementPass is the placement pass's hook: failure times, the
// hold gauge, and per-hub sessions (keys are the admitted hubs,
// "<namespace>/<name>").
func observePlacementPass(cluster types.NamespacedName, cl *vpnv1alpha1.VPNCluster, ms *memberSet, holding map[string]bool, keys []string, held bool, now time.Time) {
	failures.observe(cluster, ms, holding, time.Duration(leaseDuration(cl))*time.Second, now)

	h := gaugeSet{}
	h.add(boolGauge(held), cluster.Namespace, cluster.Name)
	heldSeries.replace(cluster, h)

	// Hub keys → [client, bridge]. Every admitted hub gets a series (0 when
	// idle); only hubs that exist and are admitted: a member's report must
	// not create series for names the operator does not know.
	per := make(map[string][2]int32, len(keys))
	for _, k := range keys {
		per[k] = [2]int32{}
	}
	for _, m := range ms.Members {
		for k, l := range m.Load.Sessions {
			if s, ok := per[k]; ok {
				per[k] = [2]int32{s[0] + l.Client, s[1] + l.Bridge}
			}
		}
	}
	hubSessSeries.replace(cluster, per)
}

// hubGauges is hubfleet_hub_sessions with its series owned by clusters, like
// ownedGauges but keyed by hub without building label strings: it runs over
// every hub on every placement pass (10,000 per failover).
type hubGauges struct {
	mu    sync.Mutex
	owned map[types.NamespacedName]map[string][2]int32
}

func (g *hubGauges) replace(cluster types.NamespacedName, per map[string][2]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.owned[cluster]
	for k, v := range per {
		if o, ok := old[k]; !ok || o != v {
			ns, name, _ := strings.Cut(k, "/")
			hubSessions.WithLabelValues(ns, name, kindClient).Set(float64(v[0]))
			hubSessions.WithLabelValues(ns, name, kindBridge).Set(float64(v[1]))
		}
	}
	for k := range old {
		if _, ok := per[k]; !ok {
			ns, name, _ := strings.Cut(k, "/")
			hubSessions.DeleteLabelValues(ns, name, kindClient)
			hubSessions.DeleteLabelValues(ns, name, kindBridge)
		}
	}
	if len(per) == 0 {
		delete(g.owned, cluster)
		return
	}
	g.owned[cluster] = per
}

func (g *hubGauges) forget(cluster types.NamespacedName) { g.replace(cluster, nil) }

// observeHubWritten is the status write's hook: it counts a first placement
// or a move once its write landed, and observes a move's failover time.
func observeHubWritten(cluster types.NamespacedName, u *hubUpdate, now time.Time) {
	n, o := u.desired.LastReassignment, u.hub.status.LastReassignment
	switch {
	case n != nil && (o == nil || n.From != o.From || n.To != o.To || !n.Time.Equal(&o.Time)):
		placementsTotal.WithLabelValues(cluster.Namespace, cluster.Name, n.Reason).Inc()
		if at, ok := failures.signal(cluster, n.From); ok {
			// Clamped: a kubelet clock ahead of ours must not give a negative time.
			reassignmentSeconds.WithLabelValues(cluster.Namespace, cluster.Name, n.Reason).Observe(max(now.Sub(at), 0).Seconds())
		}
	case u.desired.AssignedMember != "" && u.hub.status.AssignedMember == "":
		placementsTotal.WithLabelValues(cluster.Namespace, cluster.Name, placementInitial).Inc()
	}
}

// forgetPlacementMetrics drops a deleted cluster's placement series,
// counters and histogram included: a re-created cluster of the same name
// starts from zero, as any restarted counter does.
func forgetPlacementMetrics(cluster types.NamespacedName) {
	failures.forget(cluster)
	heldSeries.forget(cluster)
	hubSessSeries.forget(cluster)
	l := prometheus.Labels{"cluster_namespace": cluster.Namespace, "cluster": cluster.Name}
	placementsTotal.DeletePartialMatch(l)
	reassignmentSeconds.DeletePartialMatch(l)
}

// observeMembers is the cluster status's hook; hubsOn counts hub instances
// by member.
func observeMembers(cl *vpnv1alpha1.VPNCluster, ms *memberSet, hubsOn map[string]int32) {
	key := types.NamespacedName{Namespace: cl.Namespace, Name: cl.Name}
	ready, sess, hubs := gaugeSet{}, gaugeSet{}, gaugeSet{}
	for i := range ms.Members {
		v := &ms.Members[i]
		ready.add(boolGauge(v.Ready()), cl.Namespace, cl.Name, v.Name)
		sess.add(float64(v.Client), cl.Namespace, cl.Name, v.Name, kindClient)
		sess.add(float64(v.Bridge), cl.Namespace, cl.Name, v.Name, kindBridge)
		hubs.add(float64(hubsOn[v.Name]), cl.Namespace, cl.Name, v.Name)
	}
	memberReadySeries.replace(key, ready)
	memberSessSeries.replace(key, sess)
	memberHubSeries.replace(key, hubs)
}

func forgetMemberMetrics(cluster types.NamespacedName) {
	memberReadySeries.forget(cluster)
	memberSessSeries.forget(cluster)
	memberHubSeries.forget(cluster)
}

// observeLicenses is the license reconcile's hook, with the totals, use and
// allocations it computed.
func observeLicenses(cl *vpnv1alpha1.VPNCluster, st *vpnv1alpha1.ConnectionLicenseStatus) {
	key := types.NamespacedName{Namespace: cl.Namespace, Name: cl.Name}
	total, inUse, alloc := gaugeSet{}, gaugeSet{}, gaugeSet{}
	total.add(float64(st.ClientTotal), cl.Namespace, cl.Name, kindClient)
	total.add(float64(st.BridgeTotal), cl.Namespace, cl.Name, kindBridge)
	inUse.add(float64(st.ClientInUse), cl.Namespace, cl.Name, kindClient)
	inUse.add(float64(st.BridgeInUse), cl.Namespace, cl.Name, kindBridge)
	for _, a := range st.Allocations {
		alloc.add(float64(a.Client), cl.Namespace, cl.Name, a.Member, kindClient)
		alloc.add(float64(a.Bridge), cl.Namespace, cl.Name, a.Member, kindBridge)
	}
	licTotalSeries.replace(key, total)
	licInUseSeries.replace(key, inUse)
	licAllocSeries.replace(key, alloc)
}

// forgetLicenseMetrics drops the license series of a cluster that has no
// license left, or no longer exists.
func forgetLicenseMetrics(cluster types.NamespacedName) {
	licTotalSeries.forget(cluster)
	licInUseSeries.forget(cluster)
	licAllocSeries.forget(cluster)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
