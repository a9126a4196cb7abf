// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// VirtualHubReconciler places a cluster's hubs. Its request is a VPNCluster
// key: every hub, pod and Lease event of the cluster lands here, and one
// reconcile builds a placement snapshot of the whole cluster, runs
// pkg/placement, and writes the hubs whose status changed.
//
// VirtualHubs carry no finalizer: a hub owns nothing outside itself, and its
// deletion event already triggers a new placement without it. A finalizer
// would double the writes of creating 10,000 hubs and block namespace
// deletion whenever the operator is down.
type VirtualHubReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Workers is how many status writes run at once.
	Workers int

	mu sync.Mutex
	// written remembers, per hub, the status this reconciler last wrote and
	// the resourceVersion the API server gave it, until the cache shows that
	// resourceVersion. A reconcile that runs before the cache has caught up
	// with our own writes (they arrive as watch events, in no hurry) would
	// otherwise see the old assignment and move a hub twice.
	written map[types.UID]writtenStatus
}

type writtenStatus struct {
	cluster types.NamespacedName
	rv      string
	status  vpnv1alpha1.VirtualHubStatus
}

// Reconcile places every hub of the cluster named by req.
func (r *VirtualHubReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	var list vpnv1alpha1.VirtualHubList
	// No deep copy of 10,000 cached hubs per reconcile: nothing below mutates
	// them (desired statuses are built fresh; patches work on copies).
	if err := r.Client.List(ctx, &list, client.MatchingFields{indexClusterKey: req.String()}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	cl := &vpnv1alpha1.VPNCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, cl); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
		cl = nil
	} else if !cl.DeletionTimestamp.IsZero() {
		cl = nil
	}
	listed := time.Now()
	hubs := r.current(req.NamespacedName, list.Items)
	updates, requeue, err := r.place(ctx, cl, req.NamespacedName, hubs, listed)
	if err != nil {
		return ctrl.Result{}, err
	}
	placed := time.Now()
	bulk := r.quietBulkPlacements(updates)
	conflict, err := r.write(ctx, req.NamespacedName, updates)
	if conflict && (requeue == 0 || requeue > conflictRetry) {
		requeue = conflictRetry
	}
	if bulk > 0 && cl != nil {
		r.Recorder.Eventf(cl, nil, corev1.EventTypeNormal, ReasonPlaced, "Place", "placed %d new hubs in one pass (per-hub Placed Events are kept for batches of up to %d)", bulk, placedEventsPerHub)
	}
	if len(updates) > 0 {
		log.FromContext(ctx).V(1).Info("placement written", "hubs", len(hubs), "updates", len(updates),
			"list", listed.Sub(start), "place", placed.Sub(listed), "write", time.Since(placed))
	}
	return ctrl.Result{RequeueAfter: requeue}, err
}

// placedEventsPerHub is the largest batch of first placements that gets one
// Placed Event per hub. A bulk creation (10,000 hubs from a script) gets one
// Event on the cluster instead: per-hub Events would double the API writes of
// the placement, and each hub's Scheduled condition already records when and
// where it was placed. Reassignments always get one Event per hub.
const placedEventsPerHub = 10

// quietBulkPlacements drops the per-hub Placed Events of a bulk placement and
// returns how many it dropped (0 for a small batch).
func (r *VirtualHubReconciler) quietBulkPlacements(ups []hubUpdate) int {
	n := 0
	for i := range ups {
		if e := ups[i].event; e != nil && e.reason == ReasonPlaced && e.action == "Place" {
			n++
		}
	}
	if n <= placedEventsPerHub {
		return 0
	}
	for i := range ups {
		if e := ups[i].event; e != nil && e.reason == ReasonPlaced && e.action == "Place" {
			ups[i].event = nil
		}
	}
	return n
}

// liveHub is a hub as the cache has it, with the status we believe it has
// now (ours if the cache is behind our writes).
type liveHub struct {
	obj    *vpnv1alpha1.VirtualHub
	status vpnv1alpha1.VirtualHubStatus
	// rv is the resourceVersion status was read (or written) at.
	rv string
}

func (r *VirtualHubReconciler) current(key types.NamespacedName, items []vpnv1alpha1.VirtualHub) []liveHub {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[types.UID]bool, len(items))
	out := make([]liveHub, 0, len(items))
	for i := range items {
		h := &items[i]
		if !h.DeletionTimestamp.IsZero() {
			continue
		}
		seen[h.UID] = true
		lh := liveHub{obj: h, status: h.Status, rv: h.ResourceVersion}
		if w, ok := r.written[h.UID]; ok {
			if w.rv == h.ResourceVersion {
				delete(r.written, h.UID) // the cache caught up
			} else {
				lh.status, lh.rv = w.status, w.rv
			}
		}
		out = append(out, lh)
	}
	for uid, w := range r.written {
		if w.cluster == key && !seen[uid] {
			delete(r.written, uid)
		}
	}
	return out
}

// hubUpdate is one hub whose status must change.
type hubUpdate struct {
	hub     liveHub
	desired vpnv1alpha1.VirtualHubStatus
	// event, if set, is recorded on the hub once the write succeeded.
	event   *hubEvent
	written bool
}

type hubEvent struct {
	typ, reason, action, note string
	// member is the related object (the member the hub went to), so a second
	// move of one hub is its own Event rather than a repeat of the first.
	member string
}

// write patches the changed statuses with Workers goroutines and records
// each move's Event once its write landed. A conflict on one hub does not
// stop the others (each is locked on its own copy; during a failover members
// and the operator race for exactly these hubs): write reports it, and the
// pass is recomputed after conflictRetry.
func (r *VirtualHubReconciler) write(ctx context.Context, key types.NamespacedName, ups []hubUpdate) (conflict bool, err error) {
	if len(ups) == 0 {
		return false, nil
	}
	work := make(chan *hubUpdate)
	errs := make([]error, max(r.Workers, 1))
	var conflicts atomic.Bool
	var wg sync.WaitGroup
	for w := range min(len(errs), len(ups)) {
		wg.Go(func() {
			for u := range work {
				c, err := r.patch(ctx, key, u)
				if c {
					conflicts.Store(true)
				}
				if err != nil {
					errs[w] = errors.Join(errs[w], err)
				}
			}
		})
	}
	for i := range ups {
		work <- &ups[i]
	}
	close(work)
	wg.Wait()
	// Events after every status: members act on the statuses, people read
	// the Events, so the statuses get the API server first.
	for i := range ups {
		if u := &ups[i]; u.written && u.event != nil {
			r.record(key, u)
		}
	}
	return conflicts.Load(), errors.Join(errs...)
}

func (r *VirtualHubReconciler) record(key types.NamespacedName, u *hubUpdate) {
	e := u.event
	var related runtime.Object
	if e.member != "" {
		related = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: e.member}}
	}
	obj := u.hub.obj.DeepCopy()
	obj.Status = u.desired
	r.Recorder.Eventf(obj, related, e.typ, e.reason, e.action, "%s", e.note)
}

func (r *VirtualHubReconciler) patch(ctx context.Context, key types.NamespacedName, u *hubUpdate) (conflict bool, err error) {
	// The patch is the difference between the status we believe the server
	// has and the one we want, over the resourceVersion we believe it has
	// (status.go), so it is right even when the cache is behind, and a hub
	// a member moved meanwhile (pkg/member/cluster/failover.go) is not
	// moved a second time from a stale copy.
	base := u.hub.obj.DeepCopy()
	base.Status = u.hub.status
	obj := base.DeepCopy()
	obj.Status = u.desired
	base.ResourceVersion = u.hub.rv
	conflict, err = patchStatus(ctx, r.Client, obj, base)
	if conflict || err != nil {
		// What we believed is out of date: the next pass reads the cache.
		r.mu.Lock()
		delete(r.written, obj.UID)
		r.mu.Unlock()
		return conflict, err
	}
	r.mu.Lock()
	r.written[obj.UID] = writtenStatus{cluster: key, rv: obj.ResourceVersion, status: obj.Status}
	r.mu.Unlock()
	u.written = true
	observeHubWritten(key, u, time.Now())
	return false, nil
}
