// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package memberlease is the contract between a member pod and the operator
// about the member's coordination.k8s.io Lease: its name, its labels, and the
// load report it carries.
//
// Each member renews its own Lease every leaseDurationSeconds/3. The renewal
// is the member's only periodic API write, so it also carries the member's
// load (sessions per hub and kind) as a JSON annotation: liveness and load in
// one write per member per renewal, within the "at most one API write per
// member per second" budget, and the operator learns both from one watch.
//
// The package is pure (no client): the member and the operator import the
// same types so the encoding cannot drift.
package memberlease

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// LeaseName is the name of a member's Lease: exactly the member pod's name,
// in the cluster's namespace. One name for both lets the operator join a pod
// and its Lease without a lookup table, and lets the member's Role restrict
// Lease updates to the member names.
func LeaseName(podName string) string { return podName }

// Labels returns the labels a member puts on its Lease.
func Labels(cluster string) map[string]string {
	return map[string]string{memberpod.LabelCluster: cluster}
}

// HubLoad is the sessions of one hub on one member, by license kind.
type HubLoad struct {
	Client int32 `json:"client,omitempty"`
	Bridge int32 `json:"bridge,omitempty"`
}

// Total is the hub's sessions of both kinds.
func (h HubLoad) Total() int32 { return h.Client + h.Bridge }

// Load is what a member reports on each renewal.
type Load struct {
	// Sessions maps "<namespace>/<hub>" to that hub's sessions on the member.
	// Hubs with no session may be left out.
	Sessions map[string]HubLoad
	// Licenses is the license allocation the member's gate applies at the
	// moment of the report, its own, loans left out; nil when it admits
	// without limit (no license). The operator hands licenses freed by
	// lowering a member's allocation to others only once that member
	// reports the lower figure here (pkg/license.Safe).
	Licenses *Allocation
	// Lent are the licenses of its own allocation the member has lent to
	// peers at the moment of the report (pkg/license: a loan counts at its
	// lender until it is given back).
	Lent *Allocation
	// Borrowed are the licenses the member holds on loan, by lender
	// (pkg/member/cluster/loans.go): a lender that restarts learns its
	// loans from here, and one that sees fewer than it lent after this
	// report writes the rest off.
	Borrowed map[string]HubLoad
}

// wireLoad is Load as the annotation carries it. The allocation is still
// written under the key "licences", the spelling of the earlier releases: an
// operator of the previous release (a rollback runs one against members of
// this one) reads only that key, and an allocation it cannot read would let
// it hand out a license before the member confirmed giving it up, which
// oversubscribes. Decode reads both spellings, so the next release can write
// "licenses" (and stop writing "licences") without that risk.
type wireLoad struct {
	Sessions map[string]HubLoad `json:"sessions,omitempty"`
	OldKey   *Allocation        `json:"licences,omitempty"` // written; read
	NewKey   *Allocation        `json:"licenses,omitempty"` // read only, for now
	Borrowed map[string]HubLoad `json:"borrowed,omitempty"`
	Lent     *Allocation        `json:"lent,omitempty"`
}

// MarshalJSON writes l in the annotation's form.
func (l Load) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireLoad{Sessions: l.Sessions, OldKey: l.Licenses, Borrowed: l.Borrowed, Lent: l.Lent})
}

// UnmarshalJSON reads the annotation's form, the allocation under either key.
func (l *Load) UnmarshalJSON(b []byte) error {
	var w wireLoad
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	a := w.NewKey
	switch {
	case a == nil:
		a = w.OldKey
	case w.OldKey != nil && *w.OldKey != *a:
		return fmt.Errorf("the allocation is given twice, as licenses %+v and licences %+v: a member writes one of them", *a, *w.OldKey)
	}
	*l = Load{Sessions: w.Sessions, Licenses: a, Borrowed: w.Borrowed, Lent: w.Lent}
	return nil
}

// Allocation is an applied license allocation by kind.
type Allocation struct {
	Client int32 `json:"client"`
	Bridge int32 `json:"bridge"`
}

// Totals sums the member's sessions by kind across all its hubs.
func (l Load) Totals() (client, bridge int32) {
	for _, h := range l.Sessions {
		client += h.Client
		bridge += h.Bridge
	}
	return client, bridge
}

// Equal reports whether two loads carry the same figures (a nil and an empty
// map are equal), so the member can skip re-encoding an unchanged load.
func (l Load) Equal(o Load) bool {
	if !equalAllocation(l.Licenses, o.Licenses) || !equalAllocation(l.lent(), o.lent()) {
		return false
	}
	if !maps.Equal(dropZero(l.Borrowed), dropZero(o.Borrowed)) {
		return false
	}
	return maps.Equal(l.drop0(), o.drop0())
}

func (l Load) drop0() map[string]HubLoad { return dropZero(l.Sessions) }

// lent is Lent with nothing lent as nil.
func (l Load) lent() *Allocation {
	if l.Lent == nil || *l.Lent == (Allocation{}) {
		return nil
	}
	return l.Lent
}

func equalAllocation(a, b *Allocation) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func dropZero(in map[string]HubLoad) map[string]HubLoad {
	m := make(map[string]HubLoad, len(in))
	for k, v := range in {
		if v != (HubLoad{}) {
			m[k] = v
		}
	}
	return m
}

// Encode renders l for the annotation. Keys are written in sorted order
// (encoding/json sorts map keys), so an unchanged load gives the same string
// and the operator's "annotation changed" check sees no change.
func Encode(l Load) string {
	if len(l.Sessions) == 0 && l.Licenses == nil && len(l.Borrowed) == 0 && l.lent() == nil {
		return "{}"
	}
	var borrowed map[string]HubLoad
	if b := dropZero(l.Borrowed); len(b) > 0 {
		borrowed = b
	}
	b, err := json.Marshal(Load{Sessions: l.drop0(), Licenses: l.Licenses, Borrowed: borrowed, Lent: l.lent()})
	if err != nil { // cannot happen: the types only hold strings and ints
		panic(err)
	}
	return string(b)
}

// Decode parses the annotation. An empty string is an empty load (a member
// that has not reported yet). Negative counts are rejected: they would let a
// broken member lower the cluster's license use.
func Decode(s string) (Load, error) {
	var l Load
	if s == "" {
		return l, nil
	}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return Load{}, fmt.Errorf("member load annotation %s: %w", memberpod.AnnotationLoad, err)
	}
	for _, k := range slices.Sorted(maps.Keys(l.Sessions)) {
		if h := l.Sessions[k]; h.Client < 0 || h.Bridge < 0 {
			return Load{}, fmt.Errorf("member load annotation %s: hub %s has a negative session count", memberpod.AnnotationLoad, k)
		}
	}
	if a := l.Licenses; a != nil && (a.Client < 0 || a.Bridge < 0) {
		return Load{}, fmt.Errorf("member load annotation %s: negative license allocation", memberpod.AnnotationLoad)
	}
	if a := l.Lent; a != nil && (a.Client < 0 || a.Bridge < 0) {
		return Load{}, fmt.Errorf("member load annotation %s: negative licenses lent", memberpod.AnnotationLoad)
	}
	for _, k := range slices.Sorted(maps.Keys(l.Borrowed)) {
		if h := l.Borrowed[k]; h.Client < 0 || h.Bridge < 0 {
			return Load{}, fmt.Errorf("member load annotation %s: a negative loan from %s", memberpod.AnnotationLoad, k)
		}
	}
	return l, nil
}

// Expiry is when a Lease renewed at renew stops counting: renew + duration.
// The operator, not the member, owns the duration (VPNCluster
// spec.failover.leaseDurationSeconds), so a member cannot extend its own life
// by writing a longer spec.leaseDurationSeconds.
func Expiry(renew time.Time, duration time.Duration) time.Time { return renew.Add(duration) }

// RenewInterval is how often a member renews: a third of the duration, so
// two renewals can be lost before the Lease expires.
func RenewInterval(duration time.Duration) time.Duration { return duration / 3 }

// A Lease is claimed when a peer (or the operator) has judged its member dead
// and is about to move the member's dynamic hubs: the claimer updates the
// Lease with the resourceVersion it judged, setting holderIdentity to
// memberpod.ClaimPrefix+claimer and the Claim annotation. The API server's optimistic
// concurrency orders the claim against the member's own renewal (an update of
// the same object), so either the member renewed first and the claim fails,
// or the claim wins and the member's next renewal fails, after which it
// fences itself exactly as after an expiry (docs/design-operator.md,
// "Failover without the operator").

// Claim is why and by whom a member's Lease was claimed.
type Claim struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
	// Message is the evidence, for the person reading the hub's conditions.
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// EncodeClaim renders c for memberpod.AnnotationClaim.
func EncodeClaim(c Claim) string {
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: strings and a time
		panic(err)
	}
	return string(b)
}

// Claimed reports whether a Lease of member (holderIdentity holder,
// annotations ann) has been claimed, and the claim. A Lease held by another
// name without a readable annotation still counts as claimed: only the member
// itself writes its own name there.
func Claimed(member string, holder *string, ann map[string]string) (Claim, bool) {
	if holder == nil || *holder == member || *holder == "" {
		return Claim{}, false
	}
	var c Claim
	if err := json.Unmarshal([]byte(ann[memberpod.AnnotationClaim]), &c); err != nil || c.By == "" {
		c = Claim{By: strings.TrimPrefix(*holder, memberpod.ClaimPrefix), Reason: "LeaseClaimed", Message: "Lease held by " + *holder}
	}
	return c, true
}
