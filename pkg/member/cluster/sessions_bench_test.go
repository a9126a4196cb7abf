// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/sessionadmin"
)

// BenchmarkListThousandSessions is what `hubfleet sessions` does for a
// static hub whose two members list 500 sessions each (issue #13 target:
// 1,000 sessions listed within 1 s): one GET of the VirtualHub from a real
// API server (envtest), decoding its status, and printing the table. The
// entries are written as members write them (server-side apply, one field
// manager per member).
func BenchmarkListThousandSessions(b *testing.B) {
	ctx := bg()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := k8s.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	hub := &vpnv1alpha1.VirtualHub{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "big"},
		Spec:       vpnv1alpha1.VirtualHubSpec{ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, Type: vpnv1alpha1.HubStatic},
	}
	if err := k8s.Create(ctx, hub); err != nil {
		b.Fatal(err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for m := range 2 {
		self := fmt.Sprintf("vpn-member-%d", m)
		st := statusApply{SessionReports: []vpnv1alpha1.SessionReport{{Member: self, Sessions: 500, Listed: 500, LastUpdated: now}}}
		for i := range 500 {
			st.SessionList = append(st.SessionList, vpnv1alpha1.HubSession{
				ID: fmt.Sprintf("%016x%016x", m, i), User: fmt.Sprintf("user%04d", i), Kind: "client",
				Source: fmt.Sprintf("198.18.%d.%d:%d via vpn-member-%d", i/250, i%250+1, 40000+i, 1-m), Member: self,
				Since: now, LastUpdated: now, RxBytes: 1 << 30, RxFrames: 1 << 20, TxBytes: 1 << 31, TxFrames: 1 << 21,
				DHCPAddress: fmt.Sprintf("10.%d.%d.%d", m, i/250, i%250+1),
			})
		}
		if err := newSessionPublisher(self, k8s, slog.New(slog.DiscardHandler)).apply(ctx, ns.Name, "big", st); err != nil {
			b.Fatal(err)
		}
	}
	key := types.NamespacedName{Namespace: ns.Name, Name: "big"}
	var size int
	for b.Loop() {
		h, err := sessionadmin.Get(ctx, k8s, key)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(h.Status.SessionList); n != 1000 {
			b.Fatalf("the hub lists %d sessions, want 1000", n)
		}
		w := &countingWriter{}
		sessionadmin.Print(w, h, time.Now())
		size = w.n
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/list")
	b.ReportMetric(float64(size), "table-bytes")
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
