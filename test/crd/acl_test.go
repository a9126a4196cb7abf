// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package crd

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/testenv"
	"github.com/hubfleet/hubfleet/pkg/acl"
)

const aclHub = hub + "  clusterRef: {name: c}\n  accessList:\n"

// TestAccessListAccepted: every match kind in the forms the field docs promise is
// accepted, so a user copying from the docs is never refused.
func TestAccessListAccepted(t *testing.T) {
	doc := aclHub + `
  - {name: no-spoof, action: Drop, srcMAC: "02:00:5e:00:00:00/ff:ff:ff:00:00:00", dstMAC: broadcast}
  - {name: mc, action: Pass, dstMAC: multicast, vlan: 0}
  - {name: arp, action: Pass, etherType: arp}
  - {name: lldp, action: Drop, etherType: "0x88cc"}
  - {name: num, action: Drop, etherType: 34958, vlan: 4094}
  - {name: web, action: Pass, srcCIDR: 10.1.0.0/16, dstCIDR: 10.2.0.0/24, protocol: tcp, dstPorts: 443}
  - {name: hi, action: Pass, srcCIDR: "fd00::/8", protocol: 17, srcPorts: "1000-2000", dstPorts: "53"}
  - {name: ping6, action: Pass, protocol: icmpv6, users: [alice, bob]}
  - {name: dashes, action: Drop, srcMAC: "02-00:5e-00:00-01", etherType: "0X88CC", dstPorts: "00080", protocol: udp}
  - {name: rest, action: Drop}
  accessListDefault: Drop
`
	acceptedAndCompiled(t, obj(t, doc))
}

// acceptedAndCompiled: what the API server accepts, the members' compiler accepts
// too, so a valid object never leaves a hub without its access list.
func acceptedAndCompiled(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	if err := env.Client.Create(ctx(t), u, client.DryRunAll); err != nil {
		t.Fatalf("refused: %v", err)
	}
	var vh v1alpha1.VirtualHub
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &vh); err != nil {
		t.Fatal(err)
	}
	p, err := acl.CompileSpec(&vh.Spec)
	if err != nil {
		t.Fatalf("accepted by the API server but not compiled: %v", err)
	}
	if p.Len() != len(vh.Spec.AccessList) {
		t.Fatalf("compiled %d rules of %d", p.Len(), len(vh.Spec.AccessList))
	}
}

// TestAccessListDocsExamples: the examples in docs/access-lists.md are accepted
// and compile.
func TestAccessListDocsExamples(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "access-lists.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml examples, want 2", len(blocks))
	}
	for i, b := range blocks {
		doc := b[1]
		if !strings.Contains(doc, "kind: VirtualHub") {
			doc = hub + "  clusterRef: {name: c}\n" + doc
		}
		u := obj(t, doc)
		u.SetNamespace("default")
		t.Run(strconv.Itoa(i), func(t *testing.T) { acceptedAndCompiled(t, u) })
	}
}

// TestAccessListRefused: each mistake is refused with a message naming the field
// and the fix.
func TestAccessListRefused(t *testing.T) {
	cases := []struct{ name, rules, want string }{
		{"bad cidr", "  - {name: a, action: Drop, srcCIDR: 10.1.0.0/33}", "srcCIDR must be an IPv4 or IPv6 prefix"},
		{"host bits", "  - {name: a, action: Drop, dstCIDR: 10.1.0.5/16}", "no address bits set after the prefix length"},
		{"IPv4-mapped", "  - {name: a, action: Drop, dstCIDR: '::ffff:10.0.0.0/104'}", "dstCIDR must be an IPv4 or IPv6 prefix"},
		{"mixed families", "  - {name: a, action: Drop, srcCIDR: 10.0.0.0/8, dstCIDR: 'fd00::/8'}", "must both be IPv4 or both be IPv6"},
		{"ports without protocol", "  - {name: a, action: Drop, dstPorts: 80}", "srcPorts and dstPorts need protocol tcp or udp"},
		{"ports with icmp", "  - {name: a, action: Drop, protocol: icmp, srcPorts: 80}", "srcPorts and dstPorts need protocol tcp or udp"},
		{"range reversed", "  - {name: a, action: Drop, protocol: tcp, dstPorts: '2000-1000'}", "whose first port is not above its last"},
		{"port too big", "  - {name: a, action: Drop, protocol: udp, srcPorts: 70000}", "srcPorts must be a port from 0 to 65535"},
		{"port range too big", "  - {name: a, action: Drop, protocol: udp, srcPorts: '1-65536'}", "srcPorts must be a port from 0 to 65535"},
		{"protocol name", "  - {name: a, action: Drop, protocol: sctp}", "protocol must be tcp, udp, icmp, icmpv6 or a number"},
		{"protocol number", "  - {name: a, action: Drop, protocol: 256}", "protocol must be tcp, udp, icmp, icmpv6 or a number"},
		{"ethertype small", "  - {name: a, action: Drop, etherType: 1500}", "etherType must be ipv4, ipv6, arp, or a number from 1536"},
		{"ethertype hex small", "  - {name: a, action: Drop, etherType: '0x05dc'}", "etherType must be ipv4, ipv6, arp, or a number from 1536"},
		{"mac", "  - {name: a, action: Drop, srcMAC: '02:00:5e:00:01'}", "srcMAC must be a MAC address"},
		{"vlan", "  - {name: a, action: Drop, vlan: 4095}", "vlan"},
		{"action", "  - {name: a, action: Reject}", "Unsupported value: \"Reject\""},
		{"duplicate names", "  - {name: a, action: Drop}\n  - {name: a, action: Pass}", "accessList rule names must be unique"},
		{"name", "  - {name: '-a', action: Drop}", "access rule name must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(ctx(t), obj(t, aclHub+tc.rules), client.DryRunAll)
			if err == nil {
				t.Fatalf("accepted; want refusal with %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("refused for another reason: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("message %q does not say %q", err.Error(), tc.want)
			}
		})
	}
}

// TestAccessListAtMost256: the cap that bounds the compiler's tables and the
// uniqueness rule's cost is enforced.
func TestAccessListAtMost256(t *testing.T) {
	var b strings.Builder
	b.WriteString(aclHub)
	for i := 0; i < 257; i++ {
		b.WriteString("  - {name: r")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(strconv.Itoa(i))
		b.WriteString(", action: Drop}\n")
	}
	err := env.Client.Create(ctx(t), obj(t, b.String()), client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "must have at most 256 items") {
		t.Fatalf("257 rules: got %v, want a refusal saying at most 256", err)
	}
}
