// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package crd

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/testenv"
	"github.com/hubfleet/hubfleet/pkg/member"
)

const dhcpHub = hub + "  clusterRef: {name: c}\n  dhcp:\n"

// dhcpMemberAccepts converts what the API server stored as the member does
// and reports the member's verdict: an object the API accepts must never be
// one a member refuses to serve.
func dhcpMemberAccepts(t *testing.T, doc string) error {
	t.Helper()
	var vh v1alpha1.VirtualHub
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj(t, doc).Object, &vh); err != nil {
		t.Fatal(err)
	}
	_, err := member.DHCPSettings(vh.Spec.DHCP).Config()
	return err
}

func TestDHCPAccepted(t *testing.T) {
	for name, spec := range map[string]string{
		"minimal":      "    {prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.200}",
		"full":         "    {prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.254, router: 10.8.0.1, dnsServers: [10.8.0.1, 9.9.9.9], leaseSeconds: 600}",
		"router above": "    {prefix: 172.16.0.0/12, rangeStart: 172.16.0.1, rangeEnd: 172.16.255.255, router: 172.31.255.254}",
		"smallest":     "    {prefix: 192.168.7.0/30, rangeStart: 192.168.7.1, rangeEnd: 192.168.7.2}",
	} {
		t.Run(name, func(t *testing.T) {
			doc := dhcpHub + spec + "\n"
			if err := env.Client.Create(ctx(t), obj(t, doc), client.DryRunAll); err != nil {
				t.Fatalf("refused: %v", err)
			}
			if err := dhcpMemberAccepts(t, doc); err != nil {
				t.Fatalf("accepted by the API server, refused by the member: %v", err)
			}
		})
	}
}

// TestDHCPRefused: each mistake is refused with a message that says what is
// wrong and how to fix it, and the member's own check refuses it too (a
// file-mode member, or an object written before the CRD was updated).
func TestDHCPRefused(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"prefix host bits", "{prefix: 10.8.0.1/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.20}", "no address bits set after the length"},
		{"prefix v6", "{prefix: 'fd00::/64', rangeStart: 10.8.0.10, rangeEnd: 10.8.0.20}", "prefix must be an IPv4 prefix"},
		{"prefix too long", "{prefix: 10.8.0.0/31, rangeStart: 10.8.0.0, rangeEnd: 10.8.0.1}", "/30 or shorter"},
		{"start not an address", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.300, rangeEnd: 10.8.0.20}", "rangeStart must be an IPv4 address"},
		{"end outside", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.1.20}", "rangeStart and rangeEnd must be inside prefix"},
		{"reversed", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.20, rangeEnd: 10.8.0.10}", "rangeStart must be below rangeEnd"},
		{"one address", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.20, rangeEnd: 10.8.0.20}", "rangeStart must be below rangeEnd"},
		{"octet order", "{prefix: 10.0.0.0/8, rangeStart: 10.9.0.1, rangeEnd: 10.10.0.1, router: 10.9.200.1}", "router must be outside the range"},
		{"network address", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.0, rangeEnd: 10.8.0.20}", "network address"},
		{"broadcast address", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.255}", "broadcast address"},
		{"router in range", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.20, router: 10.8.0.15}", "router must be outside the range"},
		{"router outside prefix", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.20, router: 10.9.0.1}", "router must be inside prefix"},
		{"dns", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.20, dnsServers: ['fd00::1']}", "dnsServers must be IPv4 addresses"},
		{"lease", "{prefix: 10.8.0.0/24, rangeStart: 10.8.0.10, rangeEnd: 10.8.0.20, leaseSeconds: 5}", "leaseSeconds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := dhcpHub + "    " + tc.spec + "\n"
			err := env.Client.Create(ctx(t), obj(t, doc), client.DryRunAll)
			if err == nil {
				t.Fatalf("accepted; want refusal with %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("refused for another reason: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("message %q does not say %q", err.Error(), tc.want)
			}
			if dhcpMemberAccepts(t, doc) == nil {
				t.Fatal("refused by the API server but accepted by the member's check")
			}
		})
	}
}

// TestDHCPUserGuideSample: the hosting sample of docs/user-guide.md's DHCP
// section is accepted, and its pool and access list are what a member serves.
func TestDHCPUserGuideSample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "user-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		if strings.Contains(b[1], "kind: VirtualHub") && strings.Contains(b[1], "dhcp:") {
			doc = b[1]
		}
	}
	if doc == "" {
		t.Fatal("no VirtualHub with dhcp among the user guide's yaml examples")
	}
	u := obj(t, doc)
	u.SetNamespace("default") // the sample's tenant namespace does not exist here
	acceptedAndCompiled(t, u)
	if err := dhcpMemberAccepts(t, doc); err != nil {
		t.Fatalf("the sample's pool is refused by the member: %v", err)
	}
}
