// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// +kubebuilder:rbac:groups=core,resources=events,verbs=list

// explainNotCreated adds to each member whose pod was never created the reason
// the StatefulSet controller gave for failing to create it (a FailedCreate
// Event: a missing PriorityClass, a quota, an admission webhook). It exists
// nowhere else: the StatefulSet's status says nothing of it.
//
// Events are read uncached and only while a member pod is missing, so the
// operator does not hold every Event of the cluster in memory for a rare case.
func (r *VPNClusterReconciler) explainNotCreated(cl *vpnv1alpha1.VPNCluster, ms *memberSet) {
	var missing []*memberView
	for i := range ms.Members {
		if v := &ms.Members[i]; v.Pod == nil && v.State == vpnv1alpha1.MemberStarting {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 || r.APIReader == nil {
		return
	}
	// setStatus has no context; this read is best-effort and bounded.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var evs corev1.EventList
	err := r.APIReader.List(ctx, &evs, client.InNamespace(cl.Namespace), client.MatchingFieldsSelector{
		Selector: fields.SelectorFromSet(fields.Set{"involvedObject.kind": "StatefulSet", "involvedObject.name": stsName(cl), "reason": "FailedCreate"}),
	})
	if err != nil {
		return
	}
	for _, v := range missing {
		if msg := latestFailedCreate(evs.Items, v.Name); msg != "" {
			v.Message = "starting: pod not created (FailedCreate): " + msg
		}
	}
}

// latestFailedCreate is the message of the newest FailedCreate Event about
// pod, or "". The StatefulSet controller names the pod in the message
// ("create Pod vpn-member-0 in StatefulSet vpn-member failed error: …").
func latestFailedCreate(evs []corev1.Event, pod string) string {
	var best *corev1.Event
	var bestAt time.Time
	for i := range evs {
		e := &evs[i]
		if !strings.Contains(e.Message, "Pod "+pod+" ") {
			continue
		}
		at := e.LastTimestamp.Time
		if e.Series != nil && e.Series.LastObservedTime.After(at) {
			at = e.Series.LastObservedTime.Time
		}
		if at.IsZero() {
			at = e.EventTime.Time
		}
		if best == nil || at.After(bestAt) {
			best, bestAt = e, at
		}
	}
	if best == nil {
		return ""
	}
	msg := best.Message
	if _, after, ok := strings.Cut(msg, " failed error: "); ok {
		msg = after
	}
	return msg
}

// startingDetail summarises why starting members are not ready, for the
// cluster's conditions: each distinct problem once, with the members it holds
// back, so `kubectl get vpncluster -o wide` and describe show the cause.
func startingDetail(ms *memberSet) string {
	var order []string
	who := map[string][]string{}
	for _, v := range ms.Members {
		if v.State != vpnv1alpha1.MemberStarting || v.Message == "" {
			continue
		}
		msg := strings.TrimPrefix(v.Message, "starting: ")
		if who[msg] == nil {
			order = append(order, msg)
		}
		who[msg] = append(who[msg], v.Name)
	}
	var parts []string
	for i, msg := range order {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more problems (see status.members)", len(order)-3))
			break
		}
		parts = append(parts, list(who[msg])+": "+msg)
	}
	return strings.Join(parts, "; ")
}
