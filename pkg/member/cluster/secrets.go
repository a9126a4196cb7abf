// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// secretInformers holds one Secret informer per namespace that holds a user
// Secret of a hub placed on this member. Per namespace, not cluster-wide,
// because that is all members may read: with hubNamespaces All or Selector
// the operator grants Secrets only through a RoleBinding in each namespace
// holding an admitted hub (docs/design-operator.md "RBAC"). A namespace's
// informer starts when a hub there is placed here and stops when none is.
type secretInformers struct {
	cs       kubernetes.Interface
	log      *slog.Logger
	onChange func()

	mu   sync.Mutex
	byNS map[string]*nsSecrets
}

type nsSecrets struct {
	inf  toolscache.SharedIndexInformer
	stop chan struct{}
}

func newSecretInformers(cs kubernetes.Interface, log *slog.Logger, onChange func()) *secretInformers {
	return &secretInformers{cs: cs, log: log, onChange: onChange, byNS: map[string]*nsSecrets{}}
}

// ensure runs informers for exactly the namespaces in want.
func (s *secretInformers) ensure(want map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ns, n := range s.byNS {
		if !want[ns] {
			close(n.stop)
			delete(s.byNS, ns)
			s.log.Debug("stopped watching user Secrets", "namespace", ns)
		}
	}
	for ns := range want {
		if _, ok := s.byNS[ns]; ok {
			continue
		}
		inf := coreinformers.NewSecretInformer(s.cs, ns, 0, toolscache.Indexers{})
		// Only Data matters; dropping managedFields and annotations (which may hold
		// a last-applied copy of the whole Secret) halves what the member keeps.
		_ = inf.SetTransform(func(o any) (any, error) {
			if sec, ok := o.(*corev1.Secret); ok {
				sec.ManagedFields, sec.Annotations = nil, nil
			}
			return o, nil
		})
		changed := func(any) { s.onChange() }
		_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: changed, DeleteFunc: changed,
			UpdateFunc: func(_, o any) { s.onChange() },
		})
		n := &nsSecrets{inf: inf, stop: make(chan struct{})}
		s.byNS[ns] = n
		go inf.Run(n.stop)
		// The hubs of this namespace wait for the first list (see inputs.secret);
		// recompute once it is complete, since the last Add may precede HasSynced.
		go func() {
			if toolscache.WaitForCacheSync(n.stop, inf.HasSynced) {
				s.onChange()
			}
		}()
		s.log.Debug("watching user Secrets", "namespace", ns)
	}
}

// get returns the Secret (nil if absent) and whether its namespace is listed.
func (s *secretInformers) get(ns, name string) (*corev1.Secret, bool) {
	s.mu.Lock()
	n := s.byNS[ns]
	s.mu.Unlock()
	if n == nil || !n.inf.HasSynced() {
		// Not watched yet: the next ensure starts it and its sync recomputes.
		return nil, false
	}
	o, ok, err := n.inf.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil, true
	}
	return o.(*corev1.Secret), true
}

func (s *secretInformers) close() { s.ensure(nil) }
