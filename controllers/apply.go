// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// annotationSpecHash records the hash of what the operator last wrote into an
// object. Comparing desired and live objects field by field would trip over
// every default the API server fills in (and write forever); comparing the
// hash of our own desired spec is exact and makes the steady state write-free.
const annotationSpecHash = "vpn.hubfleet.io/spec-hash"

func specHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // only plain API structs are hashed
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// ensure creates desired, or updates the live object when the hash of
// hashed (the desired spec) changed. live is an empty object of desired's
// type to read into; merge copies the desired fields onto it, keeping what the
// API server allocated (a Service's clusterIP, a node port). It reports
// "created" or "updated", or "" when nothing was written.
func (r *VPNClusterReconciler) ensure(ctx context.Context, desired, live client.Object, hashed any, merge func()) (string, error) {
	h := specHash(hashed)
	ann := maps.Clone(desired.GetAnnotations())
	if ann == nil {
		ann = map[string]string{}
	}
	ann[annotationSpecHash] = h
	desired.SetAnnotations(ann)

	err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), live)
	if apierrors.IsNotFound(err) {
		if err := r.Client.Create(ctx, desired, client.FieldOwner(fieldOwner)); err != nil {
			return "", fmt.Errorf("creating %T %s: %w", desired, desired.GetName(), err)
		}
		return "created", nil
	}
	if err != nil {
		return "", err
	}
	if live.GetAnnotations()[annotationSpecHash] == h {
		return "", nil
	}
	merge()
	la := live.GetAnnotations()
	if la == nil {
		la = map[string]string{}
	}
	maps.Copy(la, ann)
	live.SetAnnotations(la)
	ll := live.GetLabels()
	if ll == nil {
		ll = map[string]string{}
	}
	maps.Copy(ll, desired.GetLabels())
	live.SetLabels(ll)
	live.SetOwnerReferences(desired.GetOwnerReferences())
	if err := r.Client.Update(ctx, live, client.FieldOwner(fieldOwner)); err != nil {
		return "", fmt.Errorf("updating %T %s: %w", live, live.GetName(), err)
	}
	return "updated", nil
}
