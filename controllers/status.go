// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Status writes: the one way every reconciler writes status.
//
// A reconciler computes the new status from a copy of the object (base) and
// writes the difference as a merge patch on the status subresource, only
// when there is one, on condition that the object is still at base's
// resourceVersion. The lock is on every write, not only on some, because
// every status here is also an input: a VPNCluster's records which members
// were up (a pass from an older copy would overwrite Ready with Starting),
// a license's allocations feed the next split (license.Safe), and a hub's
// placement is written by members too when they move a dead peer's hubs
// (pkg/member/cluster/failover.go), so a stale cache must never move a hub
// twice. A conflict is not a failure: the caller recomputes from a fresher
// copy after conflictRetry, without the error backoff and log.
//
// Where the copies come from differs, and only that: the VPNCluster and
// license reconcilers use the cache; the VirtualHub reconciler, which writes
// thousands of hubs from a worker pool, uses its own last write until the
// cache shows it (VirtualHubReconciler.written), so a pass that runs before
// its own writes come back as watch events neither conflicts with them nor
// decides from the status they replaced.

// conflictRetry is how soon a status write that lost to a newer copy is
// recomputed: at once, but without the error backoff and log of a failure.
const conflictRetry = 20 * time.Millisecond

// patchStatus writes obj's status as computed from base (with base's
// resourceVersion as the precondition). It reports a conflict as true and a
// deleted object as success.
func patchStatus(ctx context.Context, c client.Client, obj, base client.Object) (conflict bool, err error) {
	err = c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return true, nil
	}
	return false, client.IgnoreNotFound(err)
}
