// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
)

// series finds the one series of family name whose labels include want, from
// the registry the manager's metrics endpoint serves.
func series(name string, want map[string]string) (*dto.Metric, error) {
	fams, err := metrics.Registry.Gather()
	if err != nil {
		return nil, err
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		var found []*dto.Metric
		for _, m := range f.GetMetric() {
			if labelsInclude(m, want) {
				found = append(found, m)
			}
		}
		if len(found) != 1 {
			return nil, fmt.Errorf("%s%v: %d series", name, want, len(found))
		}
		return found[0], nil
	}
	return nil, fmt.Errorf("%s%v: no such family", name, want)
}

func labelsInclude(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// valueIs checks a gauge's or counter's value.
func valueIs(name string, labels map[string]string, want float64) error {
	m, err := series(name, labels)
	if err != nil {
		return err
	}
	got := m.GetGauge().GetValue() + m.GetCounter().GetValue()
	if got != want {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
	return nil
}

// hubfleetSeries lists the hubfleet_* series carrying label=value.
func hubfleetSeries(label, value string) ([]string, error) {
	fams, err := metrics.Registry.Gather()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "hubfleet_") {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelsInclude(m, map[string]string{label: value}) {
				out = append(out, f.GetName()+m.String())
			}
		}
	}
	return out, nil
}

func with(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// A placement, a load report, a license and a failover show up in the
// operator's metrics with the right labels and values; deleting the cluster
// removes every series that names it.
func TestMetricsPlacementFailoverAndCleanup(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 3, nil)
	startMembers(t, cl)
	c := map[string]string{"cluster_namespace": ns, "cluster": "vpn"}

	newHub(t, ns, "hub", cl, vpnv1alpha1.HubDynamic)
	from := placedHub(t, ns, "hub").Status.AssignedMember
	eventually(t, wait, "initial placement counted", func() error {
		return valueIs("hubfleet_hub_placements_total", with(c, "reason", placementInitial), 1)
	})

	load := memberlease.Encode(memberlease.Load{Sessions: map[string]memberlease.HubLoad{ns + "/hub": {Client: 3, Bridge: 1}}})
	renewLease(t, cl, from, time.Now(), load)
	newLicense(t, cl, "lic", 10, 2)
	hub := map[string]string{"hub_namespace": ns, "hub": "hub"}
	eventually(t, wait, "session, member and license gauges", func() error {
		for _, e := range []error{
			valueIs("hubfleet_hub_sessions", with(hub, "kind", "client"), 3),
			valueIs("hubfleet_hub_sessions", with(hub, "kind", "bridge"), 1),
			valueIs("hubfleet_member_sessions", with(c, "member", from, "kind", "client"), 3),
			valueIs("hubfleet_member_sessions", with(c, "member", from, "kind", "bridge"), 1),
			valueIs("hubfleet_member_hub_instances", with(c, "member", from), 1),
			valueIs("hubfleet_member_ready", with(c, "member", from), 1),
			valueIs("hubfleet_reassignment_held", c, 0),
			valueIs("hubfleet_license_total", with(c, "kind", "client"), 10),
			valueIs("hubfleet_license_total", with(c, "kind", "bridge"), 2),
			valueIs("hubfleet_license_in_use", with(c, "kind", "client"), 3),
			valueIs("hubfleet_license_in_use", with(c, "kind", "bridge"), 1),
			valueIs("hubfleet_licence_total", with(c, "kind", "client"), 10), // deprecated name, one more release
			valueIs("hubfleet_licence_in_use", with(c, "kind", "bridge"), 1),
		} {
			if e != nil {
				return e
			}
		}
		// The allocations are the license status's, member by member.
		l := get(t, &vpnv1alpha1.ConnectionLicense{}, ns, "lic")
		if len(l.Status.Allocations) != 3 {
			return fmt.Errorf("allocations %+v", l.Status.Allocations)
		}
		for _, a := range l.Status.Allocations {
			if err := valueIs("hubfleet_license_allocation", with(c, "member", a.Member, "kind", "client"), float64(a.Client)); err != nil {
				return err
			}
		}
		return nil
	})

	failedAt := time.Now()
	setPodReady(t, ns, from, false)
	to := moved(t, ns, "hub", from).Status.AssignedMember
	bound := time.Since(failedAt)
	eventually(t, wait, "reassignment counted and timed", func() error {
		if err := valueIs("hubfleet_hub_placements_total", with(c, "reason", ReasonMemberFailed), 1); err != nil {
			return err
		}
		m, err := series("hubfleet_reassignment_seconds", with(c, "reason", ReasonMemberFailed))
		if err != nil {
			return err
		}
		h := m.GetHistogram()
		// The pod's Ready transition time is whole seconds, so the signal may
		// be read up to a second early; never later than the test changed it.
		if h.GetSampleCount() != 1 || h.GetSampleSum() < 0 || h.GetSampleSum() > (bound+timestampGranularity).Seconds() {
			return fmt.Errorf("histogram count %d sum %vs, want 1 sample within %v", h.GetSampleCount(), h.GetSampleSum(), bound+timestampGranularity)
		}
		for _, e := range []error{
			valueIs("hubfleet_member_ready", with(c, "member", from), 0),
			valueIs("hubfleet_member_hub_instances", with(c, "member", to), 1),
			valueIs("hubfleet_member_hub_instances", with(c, "member", from), 0),
			// The hub's sessions were on the failed member; its Lease still says
			// so until the member renews, which is what the gauge reports.
			valueIs("hubfleet_hub_sessions", with(hub, "kind", "client"), 3),
		} {
			if e != nil {
				return e
			}
		}
		return nil
	})

	if err := k8s.Delete(ctx(), get(t, &vpnv1alpha1.VPNCluster{}, ns, "vpn")); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "a deleted cluster's series disappear", func() error {
		a, err := hubfleetSeries("cluster_namespace", ns)
		if err != nil {
			return err
		}
		b, err := hubfleetSeries("hub_namespace", ns)
		if err != nil {
			return err
		}
		if s := append(a, b...); len(s) > 0 {
			return fmt.Errorf("still exported: %q", s)
		}
		return nil
	})
}

// The held gauge is 1 while more members failed than maxUnavailable allows,
// and the failover time of a held hub counts from the failure, hold included.
func TestMetricsReassignmentHeld(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, nil)
	cl := newCluster(t, ns, "vpn", 3, func(c *vpnv1alpha1.VPNCluster) {
		c.Spec.Failover.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	})
	startMembers(t, cl)
	c := map[string]string{"cluster_namespace": ns, "cluster": "vpn"}
	newHub(t, ns, "hub", cl, vpnv1alpha1.HubDynamic)
	from := placedHub(t, ns, "hub").Status.AssignedMember
	other := "vpn-member-0"
	if other == from {
		other = "vpn-member-1"
	}

	// The member without the hub fails first: failing the hub's member first
	// would let the operator move the hub before it saw the second failure.
	setPodReady(t, ns, other, false)
	failedAt := time.Now()
	setPodReady(t, ns, from, false)
	eventually(t, wait, "held gauge set", func() error { return valueIs("hubfleet_reassignment_held", c, 1) })
	// The operator saw the failure no later than this.
	heldSeen := time.Now()
	eventually(t, wait, "hub held", func() error {
		h := get(t, &vpnv1alpha1.VirtualHub{}, ns, "hub")
		return condIs(h.Status.Conditions, vpnv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonReassignmentHeld)
	})

	recovered := time.Now()
	setPodReady(t, ns, other, true)
	moved(t, ns, "hub", from)
	bound := time.Since(failedAt)
	eventually(t, wait, "hold over, move timed from the failure", func() error {
		if err := valueIs("hubfleet_reassignment_held", c, 0); err != nil {
			return err
		}
		m, err := series("hubfleet_reassignment_seconds", with(c, "reason", ReasonMemberFailed))
		if err != nil {
			return err
		}
		// The time runs from the failure, not from the end of the hold: at
		// least from when the hold was seen until the member recovered.
		h := m.GetHistogram()
		lo, hi := recovered.Sub(heldSeen), bound+timestampGranularity
		if h.GetSampleCount() != 1 || h.GetSampleSum() < lo.Seconds() || h.GetSampleSum() > hi.Seconds() {
			return fmt.Errorf("histogram count %d sum %vs, want 1 sample in [%v, %v]", h.GetSampleCount(), h.GetSampleSum(), lo, hi)
		}
		return nil
	})
}
