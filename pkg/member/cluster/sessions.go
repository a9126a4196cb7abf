// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
)

// Session listing in the VirtualHub's status, and disconnection by
// annotation (docs/sessions.md).
//
// Each member writes the sessions it serves on a hub into
// status.sessionList (a list-map keyed by session id) and its summary into
// status.sessionReports (keyed by member), by server-side apply with its
// own field manager, sessionsManager(member). The API server merges the
// members' sets: a member's apply replaces only the entries it applied
// before, so the members of a static hub never overwrite each other, and an
// apply without entries removes all of this member's. What a member stopped
// listing by dying is removed once the member leaves the hub's placement,
// by the operator (controllers/virtualhub_sessions.go) and by the member
// now holding the hub (staleMembers), or by the member itself when it comes
// back under the same name.
//
// Writes: a login or logout marks its hub due sessionDebounce later, so a
// burst is one write; counters are refreshed every sessionRefresh, and only
// when some changed; writes are spaced at least sessionWriteGap apart per
// member. See docs/sessions.md for the rates.

const (
	sessionDebounce = time.Second
	sessionRefresh  = 30 * time.Second
	sessionWriteGap = 200 * time.Millisecond // at most 5 status writes/s per member
	// sessionCapTotal bounds the entries of one hub across its members
	// (about 600 bytes each with their managedFields, so ~600 kB of the
	// object's 1.5 MiB), sessionCapMember those of one member.
	sessionCapTotal  = 1000
	sessionCapMember = 500
	sessionCapMin    = 50
)

// sessionsManager is the field manager of member's session entries.
func sessionsManager(member string) string { return "hubfleet-member/" + member }

// sessionCap is how many sessions one member lists on a hub served by
// members members.
func sessionCap(members int) int {
	return min(sessionCapMember, max(sessionCapMin, sessionCapTotal/max(members, 1)))
}

// published is what a member last applied for one hub.
type published struct {
	ids      map[string]bool
	counters map[string][4]int64 // rx bytes, rx frames, tx bytes, tx frames
	total    int
	at       time.Time
	dhcp     *vpnv1alpha1.DHCPPoolUse // the hub's DHCP pool, if its server runs here
}

// sessionPublisher writes the member's sessions into hub statuses and ends
// sessions named in a hub's disconnect annotation.
type sessionPublisher struct {
	self   string
	log    *slog.Logger
	writer client.Client // uncached; status apply
	srv    *member.Server
	now    func() time.Time
	// refresh is how often changed counters are rewritten (sessionRefresh).
	refresh time.Duration

	mu    sync.Mutex
	due   map[string]time.Time // hub → when to write it
	last  map[string]*published
	asked map[string]bool // disconnect ids already acted on
	wake  chan struct{}
	cache client.Reader // set by run
	// placed says whether the hub is placed on this member (Identity.placedHere).
	placed   func(*vpnv1alpha1.VirtualHub) bool
	cleaning map[string]bool // hub/member whose stale entries are being removed
}

func newSessionPublisher(self string, writer client.Client, log *slog.Logger) *sessionPublisher {
	return &sessionPublisher{
		self: self, log: log, writer: writer, now: time.Now, refresh: sessionRefresh,
		due: map[string]time.Time{}, last: map[string]*published{}, asked: map[string]bool{},
		wake: make(chan struct{}, 1), cleaning: map[string]bool{},
	}
}

// changed is member.Options.OnSessions: a login or logout on hub.
func (p *sessionPublisher) changed(hub string) { p.mark(hub, p.now().Add(sessionDebounce)) }

// mark makes hub due at t, unless it is due sooner already.
func (p *sessionPublisher) mark(hub string, t time.Time) {
	p.mu.Lock()
	if d, ok := p.due[hub]; !ok || t.Before(d) {
		p.due[hub] = t
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run writes due hubs until ctx ends. It watches the cache's VirtualHubs for
// disconnect annotations and for entries of this member it no longer
// serves (left by an earlier process of the same name).
func (p *sessionPublisher) run(ctx context.Context, c crcache.Cache) error {
	p.mu.Lock()
	p.cache = c
	p.mu.Unlock()
	inf, err := c.GetInformer(ctx, &vpnv1alpha1.VirtualHub{})
	if err != nil {
		return err
	}
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.observe(o) },
		UpdateFunc: func(_, n any) { p.observe(n) },
	})
	refresh := time.NewTicker(p.refresh)
	defer refresh.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var lastWrite time.Time
	for {
		hub, wait := p.next()
		if hub != "" {
			if gap := sessionWriteGap - p.now().Sub(lastWrite); gap > 0 {
				wait = gap
				hub = ""
			}
		}
		if hub != "" {
			p.publish(ctx, hub)
			lastWrite = p.now()
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-refresh.C:
			p.mu.Lock()
			for h, pub := range p.last {
				if pub.total > 0 || pub.dhcp != nil {
					if _, ok := p.due[h]; !ok {
						p.due[h] = p.now()
					}
				}
			}
			p.mu.Unlock()
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// next takes the hub due first if it is due now, else says how long until
// one is (an hour when none is).
func (p *sessionPublisher) next() (string, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	first, at := "", time.Time{}
	for h, t := range p.due {
		if first == "" || t.Before(at) {
			first, at = h, t
		}
	}
	if first == "" {
		return "", time.Hour
	}
	if at.After(now) {
		return "", at.Sub(now)
	}
	delete(p.due, first)
	return first, 0
}

// observe looks at a hub as the informer has it: ids to disconnect that
// this member serves, and entries of this member it does not know of.
func (p *sessionPublisher) observe(o any) {
	h, ok := o.(*vpnv1alpha1.VirtualHub)
	if !ok || p.srv == nil {
		return
	}
	name := HubName(h)
	if ids := disconnectIDs(h); len(ids) > 0 {
		p.mu.Lock()
		fresh := map[string]bool{}
		for id := range ids {
			if !p.asked[name+"/"+id] {
				fresh[id] = true
			}
		}
		p.mu.Unlock()
		if len(fresh) > 0 {
			go p.disconnect(name, fresh)
		}
	}
	p.mu.Lock()
	_, known := p.last[name]
	p.mu.Unlock()
	if !known && listsMember(h, p.self) {
		p.mark(name, p.now())
	}
	for _, gone := range p.staleMembers(h) {
		key := name + "/" + gone
		p.mu.Lock()
		busy := p.cleaning[key]
		p.cleaning[key] = true
		p.mu.Unlock()
		if !busy {
			go p.removeStale(h.Namespace, h.Name, gone, key)
		}
	}
}

// staleMembers are the members with entries on h that h's placement no
// longer names, when this member holds h and is the first (by name) of
// those that do: it removes them, so a dead member's entries go even with
// the operator down (the operator does the same, virtualhub_sessions.go).
func (p *sessionPublisher) staleMembers(h *vpnv1alpha1.VirtualHub) []string {
	if len(h.Status.SessionReports) == 0 && len(h.Status.SessionList) == 0 {
		return nil
	}
	if p.placed == nil || !p.placed(h) {
		return nil
	}
	serving := map[string]bool{}
	if h.Status.AssignedMember != "" {
		serving[h.Status.AssignedMember] = true
	}
	for _, in := range h.Status.Instances {
		serving[in.Member] = true
	}
	for m := range serving {
		if m < p.self {
			return nil // that one cleans
		}
	}
	var out []string
	add := func(m string) {
		if !serving[m] && m != p.self && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	for _, r := range h.Status.SessionReports {
		add(r.Member)
	}
	for _, s := range h.Status.SessionList {
		add(s.Member)
	}
	return out
}

// removeStale gives up member's entries on the hub by applying nothing with
// member's field manager: the API server removes what that manager alone
// applied.
func (p *sessionPublisher) removeStale(ns, name, member, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := json.Marshal(map[string]any{
		"apiVersion": vpnv1alpha1.GroupVersion.String(), "kind": "VirtualHub",
		"metadata": map[string]string{"namespace": ns, "name": name}, "status": statusApply{},
	})
	if err == nil {
		obj := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		err = p.writer.Status().Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, body),
			client.FieldOwner(sessionsManager(member)), client.ForceOwnership)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		p.log.Warn("removing the session entries of a member that no longer holds the hub failed", "hub", ns+"/"+name, "member", member, "err", err)
	} else {
		p.log.Info("removed the session entries of a member that no longer holds the hub", "hub", ns+"/"+name, "member", member)
	}
	p.mu.Lock()
	delete(p.cleaning, key)
	p.mu.Unlock()
}

// disconnect ends the sessions of hub named in ids that this member serves.
func (p *sessionPublisher) disconnect(hub string, ids map[string]bool) {
	done := p.srv.Disconnect(hub, ids)
	if len(done) == 0 {
		return
	}
	p.mu.Lock()
	for _, id := range done {
		p.asked[hub+"/"+id] = true
	}
	p.mu.Unlock()
	p.log.Info("sessions disconnected at the hub's vpn.hubfleet.io/disconnect annotation", "hub", hub, "sessions", done)
}

// disconnectIDs parses h's disconnect annotation.
func disconnectIDs(h *vpnv1alpha1.VirtualHub) map[string]bool {
	v := h.Annotations[vpnv1alpha1.AnnotationDisconnect]
	if v == "" {
		return nil
	}
	ids := map[string]bool{}
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			ids[strings.ToLower(f)] = true
		}
	}
	return ids
}

// listsMember reports whether h's status has entries or a report of member.
func listsMember(h *vpnv1alpha1.VirtualHub, member string) bool {
	for _, r := range h.Status.SessionReports {
		if r.Member == member {
			return true
		}
	}
	for _, s := range h.Status.SessionList {
		if s.Member == member {
			return true
		}
	}
	return false
}

// publish writes hub's entries if they differ from the last write: the set
// of sessions, or (at a refresh) a counter.
func (p *sessionPublisher) publish(ctx context.Context, hub string) {
	ns, name, ok := strings.Cut(hub, "/")
	if !ok {
		return
	}
	list, _ := p.srv.Sessions(hub)
	members := 1
	p.mu.Lock()
	cache := p.cache
	prev := p.last[hub]
	p.mu.Unlock()
	if cache != nil {
		var h vpnv1alpha1.VirtualHub
		if err := cache.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &h); err == nil && h.Spec.Type == vpnv1alpha1.HubStatic {
			members = len(h.Status.Instances)
		}
	}
	total := len(list)
	list = list[:min(len(list), sessionCap(members))]
	next := &published{ids: map[string]bool{}, counters: map[string][4]int64{}, total: total, at: p.now()}
	for _, s := range list {
		next.ids[s.ID] = true
		next.counters[s.ID] = [4]int64{int64(s.RxBytes), int64(s.RxFrames), int64(s.TxBytes), int64(s.TxFrames)}
	}
	if d, ok := p.srv.DHCPUse(hub); ok {
		next.dhcp = &vpnv1alpha1.DHCPPoolUse{PoolAddresses: int32(d.PoolSize), Leases: int32(d.InUse), Quarantined: int32(d.Quarantined)}
	}
	if prev != nil && prev.total == total && reflect.DeepEqual(prev.counters, next.counters) && reflect.DeepEqual(prev.dhcp, next.dhcp) {
		return
	}
	now := metav1.NewTime(next.at.Truncate(time.Second))
	st := statusApply{}
	if total > 0 || next.dhcp != nil {
		st.SessionReports = []vpnv1alpha1.SessionReport{{Member: p.self, Sessions: int32(total), Listed: int32(len(list)), LastUpdated: now, DHCP: next.dhcp}}
		for _, s := range list {
			e := vpnv1alpha1.HubSession{
				ID: s.ID, User: s.User, Kind: s.Kind.String(), Source: s.Source, Member: p.self,
				Since: metav1.NewTime(s.Since.Truncate(time.Second)), LastUpdated: now,
				RxBytes: int64(s.RxBytes), RxFrames: int64(s.RxFrames), TxBytes: int64(s.TxBytes), TxFrames: int64(s.TxFrames),
			}
			if s.DHCPAddress.IsValid() {
				e.DHCPAddress = s.DHCPAddress.String()
			}
			st.SessionList = append(st.SessionList, e)
		}
	}
	if err := p.apply(ctx, ns, name, st); err != nil {
		if apierrors.IsNotFound(err) {
			p.mu.Lock()
			delete(p.last, hub)
			p.mu.Unlock()
			return
		}
		if ctx.Err() == nil {
			p.log.Warn("writing the hub's sessions into its status failed; retrying", "hub", hub, "err", err)
			p.mark(hub, p.now().Add(sessionDebounce))
		}
		return
	}
	p.mu.Lock()
	p.last[hub] = next
	// Ids acted on that are gone can never come back (a reconnect has a new id).
	for k := range p.asked {
		if id, ok := strings.CutPrefix(k, hub+"/"); ok && !next.ids[id] {
			delete(p.asked, k)
		}
	}
	p.mu.Unlock()
}

// statusApply is the status part of the apply configuration; empty lists
// are left out, so an apply without sessions gives up every entry.
type statusApply struct {
	SessionList    []vpnv1alpha1.HubSession    `json:"sessionList,omitempty"`
	SessionReports []vpnv1alpha1.SessionReport `json:"sessionReports,omitempty"`
}

// apply server-side applies st as this member's part of the hub's status.
func (p *sessionPublisher) apply(ctx context.Context, ns, name string, st statusApply) error {
	body, err := json.Marshal(map[string]any{
		"apiVersion": vpnv1alpha1.GroupVersion.String(),
		"kind":       "VirtualHub",
		"metadata":   map[string]string{"namespace": ns, "name": name},
		"status":     st,
	})
	if err != nil {
		return err
	}
	obj := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.writer.Status().Patch(cctx, obj, client.RawPatch(types.ApplyPatchType, body),
		client.FieldOwner(sessionsManager(p.self)), client.ForceOwnership)
}

// sessionsOnly reports whether an update of a hub changed nothing the
// member's loop reads: only the session entries, reports or the disconnect
// annotation (and the object's version). The loop is not woken for those.
func sessionsOnly(o, n *vpnv1alpha1.VirtualHub) bool { return vpnv1alpha1.SessionsOnlyChange(o, n) }
