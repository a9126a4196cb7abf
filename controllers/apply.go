// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Owned objects (StatefulSet, Services, PDB, ServiceAccount, roles and
// bindings, Secrets) are written by server-side apply as fieldOwner, with
// ownership forced: the API server merges our fields into the live object,
// keeps what it allocated (a Service's clusterIP and node port) and what
// other managers set (a `kubectl rollout restart` annotation), and removes a
// field we stop applying. Nothing is hand-merged.
//
// The desired objects are typed structs turned into apply configurations
// through unstructured: API types mark optional fields omitempty, so what is
// applied is what the builder set; status and null values (the
// creationTimestamp every typed struct carries) are dropped so they are
// never claimed.

// appliedState is what one apply left on the server: the resourceVersion it
// returned and the hash of the configuration applied.
type appliedState struct {
	rv   string
	hash [32]byte
}

// appliedCache remembers, per object, the last apply, so that a reconcile
// whose desired object is unchanged and whose cached live object is still
// the one our apply returned sends nothing: the pod and Lease events that
// wake the VPNCluster reconciler would otherwise cost one request per owned
// object each. It lives in memory only; a new leader applies everything
// once. Any other writer changes the resourceVersion, so its change is
// answered by a fresh apply.
type appliedCache struct {
	mu sync.Mutex
	// by cluster, then by object
	m map[types.NamespacedName]map[appliedKey]appliedState
}

type appliedKey struct {
	gvk       schema.GroupVersionKind
	namespace string
	name      string
}

func (c *appliedCache) get(cl types.NamespacedName, k appliedKey) (appliedState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[cl][k]
	return s, ok
}

func (c *appliedCache) put(cl types.NamespacedName, k appliedKey, s appliedState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[types.NamespacedName]map[appliedKey]appliedState{}
	}
	if c.m[cl] == nil {
		c.m[cl] = map[appliedKey]appliedState{}
	}
	c.m[cl][k] = s
}

// forget drops a deleted cluster's entries.
func (c *appliedCache) forget(cl types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, cl)
}

// applyConfig turns a typed desired object into the unstructured apply
// configuration sent to the API server, with apiVersion and kind set (an
// apply request needs them; typed builders leave TypeMeta empty).
func applyConfig(scheme *runtime.Scheme, desired client.Object) (*unstructured.Unstructured, schema.GroupVersionKind, error) {
	gvk, err := apiutil.GVKForObject(desired, scheme)
	if err != nil {
		return nil, gvk, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(desired)
	if err != nil {
		return nil, gvk, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	dropNulls(u.Object)
	return u, gvk, nil
}

// dropNulls removes null values (the creationTimestamp of a typed object and
// of its pod template): a null in an apply configuration would claim the
// field as ours with no value.
func dropNulls(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			dropNulls(v)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					dropNulls(em)
				}
			}
		}
	}
}

// apply writes desired by server-side apply and reports "created",
// "updated", or "" when the server already had it. live is read from the
// cache (never for Secrets: see applySecret).
func (r *VPNClusterReconciler) apply(ctx context.Context, cl types.NamespacedName, desired client.Object) (string, error) {
	u, gvk, err := applyConfig(r.Scheme, desired)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(u.Object)
	if err != nil {
		return "", err
	}
	key := appliedKey{gvk: gvk, namespace: desired.GetNamespace(), name: desired.GetName()}
	want := appliedState{hash: sha256.Sum256(b)}
	prev, _ := r.applied.get(cl, key)

	obj, err := r.Scheme.New(gvk)
	if err != nil {
		return "", err
	}
	live := obj.(client.Object)
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(desired), live)
	found := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	if found {
		if prev.hash == want.hash && prev.rv == live.GetResourceVersion() {
			return "", nil
		}
		if err := r.upgradeManagedFields(ctx, live); err != nil {
			return "", err
		}
	}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return "", fmt.Errorf("applying %s %s: %w", gvk.Kind, desired.GetName(), err)
	}
	want.rv = u.GetResourceVersion()
	r.applied.put(cl, key, want)
	switch {
	case want.rv == prev.rv:
		return "", nil // the cache had not yet seen our last apply
	case !found:
		return "created", nil
	case want.rv != live.GetResourceVersion():
		return "updated", nil
	}
	return "", nil
}

// upgradeManagedFields hands the fields an operator before server-side
// apply wrote with Create/Update (manager fieldOwner, operation Update) to
// our apply manager, once per object. Without it those fields would stay
// owned by the old Update entry and a field we stop applying (the bridge's
// NET_RAW, say) would never be removed; with it the next apply also drops
// the spec-hash annotation that operator kept.
func (r *VPNClusterReconciler) upgradeManagedFields(ctx context.Context, live client.Object) error {
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(fieldOwner), fieldOwner)
	if err != nil || patch == nil {
		return err
	}
	return client.IgnoreNotFound(r.Client.Patch(ctx, live, client.RawPatch(types.JSONPatchType, patch)))
}

// applySecret writes a Secret the operator decided to (re)issue. Secrets are
// read with the API reader, never cached (see reconcileCerts), and written
// only when their content must change, so there is nothing to skip.
func (r *VPNClusterReconciler) applySecret(ctx context.Context, s client.Object) error {
	u, _, err := applyConfig(r.Scheme, s)
	if err != nil {
		return err
	}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying Secret %s: %w", s.GetName(), err)
	}
	return nil
}
