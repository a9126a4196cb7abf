// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/acl"
	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/member"
)

// HubName is the name a hub has in the member, and the name clients log in
// with: "<namespace>/<name>". Namespaced, because with hubNamespaces All two
// tenants may each have a hub "corp"; the same key the Lease load uses
// (memberlease.Load), so the operator reads the load without a mapping.
// pkg/member puts no restriction on the characters of hub names.
func HubName(h *vpnv1alpha1.VirtualHub) string { return h.Namespace + "/" + h.Name }

// inputs is what the informers hold at one moment.
type inputs struct {
	hubs     []*vpnv1alpha1.VirtualHub
	licenses []*vpnv1alpha1.ConnectionLicense
	// secret looks up a user Secret; synced is false while the namespace's
	// Secret informer has not listed yet (the hub then waits rather than
	// starting with no users and refusing every login).
	secret func(namespace, name string) (s *corev1.Secret, synced bool)
	fenced bool // the Lease is expired: dynamic hubs are not served
	udpOff bool // the VPNCluster's spec.udp is Disabled
}

// result is the computed configuration and what the caller must act on.
type result struct {
	cfg *member.Config
	// secretNamespaces are the namespaces whose Secrets matter: those of every
	// hub of the cluster (placed here or not, fenced or not), so neither a
	// failover nor a fence waits for an informer to start.
	secretNamespaces map[string]bool
	// problems are per-hub issues (bad user entries, missing Secret); logged
	// when they change. One tenant's broken Secret must never stop the other
	// hubs, so these never fail the whole configuration.
	problems []string
}

// ours reports whether ref, as written on an object in namespace ns, names
// this member's cluster (an empty clusterRef.namespace means the object's own).
func (id *Identity) ours(ref vpnv1alpha1.ClusterReference, ns string) bool {
	if ref.Namespace != "" {
		ns = ref.Namespace
	}
	return ref.Name == id.Cluster && ns == id.Namespace
}

// placedHere says whether the operator placed h on this member, and whether
// it is dynamic (fenced with the Lease) or static (on every member).
func (id *Identity) placedHere(h *vpnv1alpha1.VirtualHub) (placed, dynamic bool) {
	if !id.ours(h.Spec.ClusterRef, h.Namespace) || h.DeletionTimestamp != nil {
		return false, false
	}
	if h.Spec.Type == vpnv1alpha1.HubStatic {
		for _, in := range h.Status.Instances {
			if in.Member == id.Name {
				return true, false
			}
		}
		return false, false
	}
	// Dynamic is the API default; an empty type is treated the same way.
	return h.Status.AssignedMember == id.Name, true
}

// desired computes the member configuration from in. base carries the
// file-related fields (certificate, ticket key, name, timers). Hubs are sorted
// by name so that equal inputs give equal configurations and Apply is skipped.
func desired(id *Identity, base member.Config, in inputs) result {
	r := result{secretNamespaces: map[string]bool{}}
	cfg := base
	cfg.Hubs = nil
	if in.udpOff {
		cfg.UDPListen = member.UDPOff
	}
	for _, h := range in.hubs {
		if h.Spec.Users != nil && h.Spec.Users.SecretName != "" && id.ours(h.Spec.ClusterRef, h.Namespace) && h.DeletionTimestamp == nil {
			// Every hub of the cluster, not only those placed here: a hub
			// that moves here in a failover is then served at once, without
			// first starting and syncing an informer on its namespace.
			r.secretNamespaces[h.Namespace] = true
		}
		placed, dynamic := id.placedHere(h)
		if !placed {
			continue
		}
		name := HubName(h)
		if len(name) > auth.MaxTicketName {
			r.problems = append(r.problems, fmt.Sprintf("hub %s: the name is longer than %d bytes and cannot be served", name, auth.MaxTicketName))
			continue
		}
		if dynamic && in.fenced {
			continue
		}
		hc := member.HubConfig{Name: name, Type: member.HubDynamic, Users: map[string]string{}}
		if !dynamic {
			hc.Type = member.HubStatic
		}
		if h.Spec.MaxSessions != nil && *h.Spec.MaxSessions > 0 {
			hc.MaxSessions = int(*h.Spec.MaxSessions)
		}
		if t := h.Spec.MACTable; t != nil {
			hc.MACAgeingSeconds, hc.MaxMACs = max(0, int(t.AgeingSeconds)), max(0, int(t.MaxEntries))
		}
		hc.AccessList, hc.AccessListDefault = h.Spec.AccessList, h.Spec.AccessListDefault
		if u := h.Spec.UserLimits; u != nil {
			if _, _, err := member.UserLimitSettings(u); err != nil {
				// Fail closed, as for the access list: limits the owner asked
				// for must not silently vanish. Only an object written past
				// the CRD's validation can get here.
				r.problems = append(r.problems, fmt.Sprintf("hub %s: userLimits: %v: the hub is not served until it is fixed", name, err))
				continue
			}
			hc.UserLimits = u.DeepCopy()
		}
		if _, err := acl.CompileSpec(&h.Spec); err != nil {
			// Fail closed: serving the hub without the filter its owner asked for
			// would pass what the list drops. Only an object written past the
			// CRD's validation can get here.
			r.problems = append(r.problems, fmt.Sprintf("hub %s: accessList: %v: the hub is not served until it is fixed", name, err))
			continue
		}
		if d := h.Spec.DHCP; d != nil {
			if _, err := member.DHCPSettings(d).Config(); err != nil {
				// Unlike an access list, a missing DHCP server grants nothing, so
				// the hub is served; clients with --address keep working.
				r.problems = append(r.problems, fmt.Sprintf("hub %s: dhcp: %v: the hub is served without DHCP until it is fixed", name, err))
			} else if dynamic {
				hc.DHCP = d
			}
			// A static hub's one server runs on the member its status names,
			// outside the configuration (dhcp.go).
		}
		if h.Spec.Users != nil && h.Spec.Users.SecretName != "" {
			s, synced := in.secret(h.Namespace, h.Spec.Users.SecretName)
			if !synced {
				continue // served once its namespace's Secrets are known
			}
			if s == nil {
				r.problems = append(r.problems, fmt.Sprintf("hub %s: user Secret %s/%s not found: every login is refused until it exists", name, h.Namespace, h.Spec.Users.SecretName))
			} else {
				r.problems = append(r.problems, addUsers(&hc, s)...)
			}
		}
		cfg.Hubs = append(cfg.Hubs, hc)
	}
	sort.Slice(cfg.Hubs, func(i, j int) bool { return cfg.Hubs[i].Name < cfg.Hubs[j].Name })
	cfg.Licenses = allocation(id, in.licenses)
	r.cfg = &cfg
	sort.Strings(r.problems)
	return r
}

// addUsers copies the Secret's entries (user name → argon2id PHC) into hc,
// leaving out entries member.Config.Validate would refuse, each with a problem
// naming the user, so a tenant's typo locks out one user, not the member.
func addUsers(hc *member.HubConfig, s *corev1.Secret) []string {
	var problems []string
	add := func(user, phc string) {
		if user == "" || len(user) > auth.MaxTicketName {
			problems = append(problems, fmt.Sprintf("hub %s: Secret %s/%s: user name %q must be 1..%d bytes; left out", hc.Name, s.Namespace, s.Name, user, auth.MaxTicketName))
			return
		}
		if _, err := auth.ParseHash(phc); err != nil {
			problems = append(problems, fmt.Sprintf("hub %s: Secret %s/%s: user %q: %v (make one with `hubfleet hash-password`); left out", hc.Name, s.Namespace, s.Name, user, err))
			return
		}
		hc.Users[user] = phc
	}
	for user, v := range s.Data {
		add(user, string(v))
	}
	for user, v := range s.StringData { // only set on objects not yet written, but harmless
		add(user, v)
	}
	return problems
}

// allocation is this member's licenses: no ConnectionLicense for the cluster
// → unlimited (nil); at least one → this member's entry in
// status.allocations (the operator writes the same list on every license of
// the cluster, so the first entry found is the one), and no entry yet → zero,
// because admitting without an allocation could oversubscribe the licenses.
func allocation(id *Identity, licenses []*vpnv1alpha1.ConnectionLicense) *member.Licenses {
	limited := false
	for _, l := range licenses {
		if !id.ours(l.Spec.ClusterRef, l.Namespace) || l.DeletionTimestamp != nil {
			continue
		}
		limited = true
		for _, a := range l.Status.Allocations {
			if a.Member == id.Name {
				return &member.Licenses{Client: int(a.Client), Bridge: int(a.Bridge)}
			}
		}
	}
	if !limited {
		return nil
	}
	return &member.Licenses{}
}
