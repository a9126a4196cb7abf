// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// TestLeaseLoad measures what the default 3 s Lease costs the API server: N
// members (HUBFLEET_LEASE_LOAD, e.g. 100) each renew their own Lease every
// second as renewLoop does (one Update of the copy the last write returned,
// each bounded by the interval), for 30 s against the envtest API server.
// It reports the write rate achieved, the Update latency, and the longest
// gap between two successful renewals of one member — above the lease
// duration that member would have fenced itself. A measurement, run by hand:
//
//	HUBFLEET_LEASE_LOAD=100 [HUBFLEET_LEASE_WATCH=1] go test ./pkg/member/cluster -run TestLeaseLoad -v
func TestLeaseLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HUBFLEET_LEASE_LOAD"))
	if n <= 0 {
		t.Skip("set HUBFLEET_LEASE_LOAD=<members> to measure Lease renewal load")
	}
	const lease, window = 3 * time.Second, 30 * time.Second
	interval := max(memberlease.RenewInterval(lease), MinRenewInterval)
	ns := newNamespace(t)
	rc := rest.CopyConfig(env.Config)
	// Each member is its own process with its own client; one shared client
	// with default rate limits would measure the limiter.
	rc.QPS, rc.Burst = -1, 0
	var mu sync.Mutex
	var lat []time.Duration
	var maxGap time.Duration
	writes, failed, fenced := 0, 0, 0
	ctx, cancel := context.WithTimeout(bg(), window)
	defer cancel()
	var wg sync.WaitGroup
	// With HUBFLEET_LEASE_WATCH=1 every member also watches the cluster's
	// Leases, as failover.go's informer does: N renewals per second become
	// N² watch events per second delivered by the API server.
	watching := os.Getenv("HUBFLEET_LEASE_WATCH") == "1"
	var events atomic.Int64
	for i := range n {
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			t.Fatal(err)
		}
		if watching {
			w, err := cs.CoordinationV1().Leases(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "vpn.hubfleet.io/cluster=vpn"})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				defer w.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case _, ok := <-w.ResultChan():
						if !ok {
							return
						}
						events.Add(1)
					}
				}
			})
		}
		leases := cs.CoordinationV1().Leases(ns)
		name := fmt.Sprintf("vpn-member-%d", i)
		cur, err := leases.Create(bg(), &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: memberlease.Labels("vpn"),
				Annotations: map[string]string{memberpod.AnnotationLoad: "{}"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(int32(lease / time.Second))},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			last := time.Now()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				start := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, interval)
				l := cur.DeepCopy()
				l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(start))
				next, err := leases.Update(rctx, l, metav1.UpdateOptions{})
				rcancel()
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						failed++
					}
				} else {
					cur = next
					writes++
					lat = append(lat, took)
					if g := start.Sub(last); g > maxGap {
						maxGap = g
					}
					if start.Sub(last) >= lease {
						fenced++
					}
					last = start
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	pct := func(p int) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, len(lat)*p/100)]
	}
	t.Logf("%d members, lease %v, renew every %v, %v, every member watching all Leases: %v (%d watch events, %.0f/s): %d writes (%.1f/s), %d failed or timed out; Update latency p50 %v p99 %v max %v; longest gap between one member's renewals %v; renewals after the lease had expired: %d",
		n, lease, interval, window, watching, events.Load(), float64(events.Load())/window.Seconds(), writes, float64(writes)/window.Seconds(), failed,
		pct(50).Round(time.Millisecond), pct(99).Round(time.Millisecond), pct(100).Round(time.Millisecond), maxGap.Round(time.Millisecond), fenced)
}
