// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/scheme"
)

// watcher keeps the hubs' assigned members and the cluster's ready count from
// an informer, and wakes waiters on every change.
type watcher struct {
	mu       sync.Mutex
	assigned map[string]string
	ready    string
	changed  chan struct{}
}

func newWatcher(ctx context.Context, cfg *rest.Config) (*watcher, error) {
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	w := &watcher{assigned: map[string]string{}, changed: make(chan struct{})}
	hi, err := ca.GetInformer(ctx, &vpnv1alpha1.VirtualHub{})
	if err != nil {
		return nil, err
	}
	onHub := func(o any) {
		if h, ok := o.(*vpnv1alpha1.VirtualHub); ok {
			w.update(func() { w.assigned[h.Name] = h.Status.AssignedMember })
		}
	}
	if _, err := hi.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: onHub, UpdateFunc: func(_, n any) { onHub(n) }}); err != nil {
		return nil, err
	}
	ci, err := ca.GetInformer(ctx, &vpnv1alpha1.VPNCluster{})
	if err != nil {
		return nil, err
	}
	onCl := func(o any) {
		if c, ok := o.(*vpnv1alpha1.VPNCluster); ok {
			w.update(func() { w.ready = c.Status.Ready })
		}
	}
	if _, err := ci.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: onCl, UpdateFunc: func(_, n any) { onCl(n) }}); err != nil {
		return nil, err
	}
	go func() { _ = ca.Start(ctx) }()
	ca.WaitForCacheSync(ctx)
	return w, nil
}

func (w *watcher) update(f func()) {
	w.mu.Lock()
	f()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// until waits for cond (checked under the lock) with a deadline, woken by
// informer events rather than a polling interval.
func (w *watcher) until(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		ok, ch := cond(), w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("%s: not reached in %v", what, timeout)
		}
	}
}

func (w *watcher) waitCluster(ready string, timeout time.Duration) error {
	return w.until(timeout, "cluster ready "+ready, func() bool { return w.ready == ready })
}

func (w *watcher) waitPlaced(n int, timeout time.Duration) error {
	return w.until(timeout, "all hubs placed", func() bool {
		if len(w.assigned) < n {
			return false
		}
		for _, m := range w.assigned {
			if m == "" {
				return false
			}
		}
		return true
	})
}

func (w *watcher) hubsOn(member string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for h, m := range w.assigned {
		if m == member {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

func (w *watcher) perMember() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	by := map[string]int{}
	for _, m := range w.assigned {
		by[m]++
	}
	var out []int
	for _, n := range by {
		out = append(out, n)
	}
	return out
}

func (w *watcher) waitFirstGone(member string, hubs []string, timeout time.Duration) error {
	return w.until(timeout, "first hub moved off "+member, func() bool {
		for _, h := range hubs {
			if m := w.assigned[h]; m != member && m != "" {
				return true
			}
		}
		return len(hubs) == 0
	})
}

func (w *watcher) waitGone(member string, hubs []string, timeout time.Duration) error {
	return w.until(timeout, "hubs moved off "+member, func() bool {
		for _, h := range hubs {
			if m := w.assigned[h]; m == member || m == "" {
				return false
			}
		}
		return true
	})
}
