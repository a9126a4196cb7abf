// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// The license families are hubfleet_license_*; the names of the earlier
// releases (hubfleet_licence_*) stay exported for one more release, with the
// same series and values and a HELP naming the new name.
func TestUnitDeprecatedLicenseMetricNames(t *testing.T) {
	cl := &vpnv1alpha1.VPNCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "unit-metrics", Name: "vpn"}}
	observeLicenses(cl, &vpnv1alpha1.ConnectionLicenseStatus{
		ClientTotal: 10, BridgeTotal: 2, ClientInUse: 3, BridgeInUse: 1,
		Allocations: []vpnv1alpha1.LicenseAllocation{{Member: "vpn-member-0", Client: 6, Bridge: 1}},
	})
	t.Cleanup(func() { forgetLicenseMetrics(types.NamespacedName{Namespace: "unit-metrics", Name: "vpn"}) })

	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	help := map[string]string{}
	values := map[string]float64{} // name{label values in order} -> value, this cluster only
	for _, f := range fams {
		help[f.GetName()] = f.GetHelp()
		for _, m := range f.Metric {
			k, ours := f.GetName()+"{", false
			for _, l := range m.Label {
				k += l.GetName() + "=" + l.GetValue() + ","
				ours = ours || l.GetName() == "cluster_namespace" && l.GetValue() == "unit-metrics"
			}
			if ours && m.Gauge != nil {
				values[k+"}"] = m.Gauge.GetValue()
			}
		}
	}
	series := func(name string, labels ...string) string {
		k := name + "{"
		for _, l := range labels {
			k += l + ","
		}
		return k + "}"
	}
	c := []string{"cluster=vpn", "cluster_namespace=unit-metrics"}
	for _, suffix := range []string{"total", "in_use", "allocation"} {
		now, old := "hubfleet_license_"+suffix, "hubfleet_licence_"+suffix
		if want := "Deprecated: use " + now + " (removed in the next release)."; help[old] != want {
			t.Errorf("HELP of %s is %q; want %q", old, help[old], want)
		}
		if help[now] == "" || help[now] == help[old] {
			t.Errorf("HELP of %s is %q", now, help[now])
		}
	}
	for labels, want := range map[string]float64{
		series("total", append(c, "kind=client")...):                             10,
		series("total", append(c, "kind=bridge")...):                             2,
		series("in_use", append(c, "kind=client")...):                            3,
		series("in_use", append(c, "kind=bridge")...):                            1,
		series("allocation", append(c, "kind=client", "member=vpn-member-0")...): 6,
		series("allocation", append(c, "kind=bridge", "member=vpn-member-0")...): 1,
	} {
		for _, prefix := range []string{"hubfleet_license_", "hubfleet_licence_"} {
			if got, ok := values[prefix+labels]; !ok || got != want {
				t.Errorf("%s%s = %v (present %v); want %v", prefix, labels, got, ok, want)
			}
		}
	}
	if len(values) != 2*6 {
		t.Errorf("%d series for the cluster; want 6 under each name: %v", len(values), values)
	}
}
