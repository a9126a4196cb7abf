// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/license"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// TestLicenseLoansOnBurst (issue #16 item 9): a license of 5 split 2/3, and
// a burst of logins on a dynamic hub owned by the member with 2. All 5 are
// admitted — the owner borrows the other member's idle licenses — and the
// 6th is refused saying the cluster's total is in use. Loans show in the
// borrower's Lease, and go back once sessions end.
func TestLicenseLoansOnBurst(t *testing.T) {
	ns := dynOnMember1(t)
	m0, m1, _ := meshPair(t, ns)
	lic := &vpnv1alpha1.ConnectionLicense{}
	lic.Namespace, lic.Name = ns, "lic"
	lic.Spec = vpnv1alpha1.ConnectionLicenseSpec{ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, ClientConnections: 5}
	create(t, lic)
	patch := client.RawPatch("application/merge-patch+json", mustJSON(t, map[string]any{"status": vpnv1alpha1.ConnectionLicenseStatus{
		Allocations: []vpnv1alpha1.LicenseAllocation{{Member: "vpn-member-0", Client: 3}, {Member: "vpn-member-1", Client: 2}},
	}}))
	if err := k8s.Status().Patch(bg(), lic, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "allocations applied", func() error {
		if a, b := m0.m.Server().Licenses().ClientAllocation, m1.m.Server().Licenses().ClientAllocation; a != 3 || b != 2 {
			return fmt.Errorf("allocations %d and %d", a, b)
		}
		return nil
	})
	dyn := ns + "/dyn"
	renewedAndServing(t, m1, dyn)
	var sessions []*session
	for i := range 5 {
		s, err := m1.login(dyn, "bob")
		if err != nil {
			t.Fatalf("login %d of 5 refused on a license of 5: %v", i+1, err)
		}
		sessions = append(sessions, s)
	}
	defer func() {
		for _, s := range sessions {
			s.conn.Close()
		}
	}()
	_, err := m1.login(dyn, "bob")
	le, ok := errors.AsType[*protocol.LoginError](err)
	if !ok || le.Code != protocol.LicenseExhausted || !strings.Contains(le.Message, "every client connection license of the cluster is in use") {
		t.Fatalf("6th login: %v, want license exhausted for the whole cluster", err)
	}
	if lent, _ := m0.m.Server().Gate().Loans(); lent[sessionkind.Client] != 3 {
		t.Fatalf("m0 lent %d licenses, want its 3", lent[sessionkind.Client])
	}
	eventually(t, 10*time.Second, "the loans in m1's Lease", func() error {
		l, err := memberlease.Decode(memberLease(t, ns, "vpn-member-1").Annotations[memberpod.AnnotationLoad])
		if err != nil || l.Borrowed["vpn-member-0"].Client != 3 {
			return fmt.Errorf("load %+v %v", l, err)
		}
		return nil
	})

	// Two sessions end: m1 repays two (on its next renewal), and m0 may
	// admit two of its own again.
	sessions[0].conn.Close()
	sessions[1].conn.Close()
	eventually(t, 10*time.Second, "two loans repaid", func() error {
		if lent, _ := m0.m.Server().Gate().Loans(); lent[sessionkind.Client] != 1 {
			return fmt.Errorf("m0 lends %d", lent[sessionkind.Client])
		}
		return nil
	})
}

// A lender fails while sessions run on its licenses: the borrower admits no
// more on them but reports them as long as those sessions last, so the
// lender, restarting with a clean slate, still counts them as lent.
func TestFrozenLoansReportedUntilSessionsEnd(t *testing.T) {
	c := sessionkind.Client
	g := license.NewGate(1, 0)
	l := newLoans("m-1", testLogger(t), nil)
	l.gate = g
	for range 2 {
		g.AddBorrowed(c)
	}
	l.from["m-0"] = [sessionkind.N]int{sessionkind.Client: 2}
	for range 3 {
		if !g.TryAcquire(c) {
			t.Fatal("refused within allocation and loans")
		}
	}
	l.reconcile([]loanReport{{peer: "m-0", failed: true}})
	if g.TryAcquire(c) {
		t.Fatal("admitted on the licenses of a failed lender")
	}
	report := func() int32 { return l.borrowed()["m-0"].Client }
	if n := report(); n != 2 {
		t.Fatalf("reports %d borrowed from the failed lender, want the 2 in use", n)
	}
	g.Release(c)
	if n := report(); n != 1 {
		t.Fatalf("one session ended: reports %d, want 1", n)
	}
	g.Release(c)
	g.Release(c)
	if n := report(); n != 0 {
		t.Fatalf("all sessions ended: reports %d, want none", n)
	}
}

// A pass without the VPNCluster (not in the cache) judges no peer: the
// lender must not write its loans off as if no member reported them.
func TestLoansKeptWithoutAJudgement(t *testing.T) {
	c := sessionkind.Client
	g := license.NewGate(2, 0)
	l := newLoans("m-0", testLogger(t), nil)
	l.gate = g
	if ans := l.answer([]byte(`{"op":"borrow","from":"m-1","kind":1}`)).(loanAnswer); !ans.Granted {
		t.Fatal("an idle license was not lent")
	}
	l.reconcile(nil)
	if lent, _ := g.Loans(); lent[c] != 1 {
		t.Fatalf("lent %d after a pass with no judgement, want the loan kept", lent[c])
	}
	l.reconcile([]loanReport{})
	if lent, _ := g.Loans(); lent[c] != 0 {
		t.Fatalf("lent %d after a judgement without m-1 (no longer a member), want it written off", lent[c])
	}
}

// A lender brings its Lease report up to date before it lends, never after:
// otherwise the session that freed the license and the borrower's new one
// are both in the Lease loads for a moment (seen end to end: 3 sessions in
// the loads on a license of 2). It does not bother when it has nothing to
// lend.
func TestLenderReportsBeforeLending(t *testing.T) {
	g := license.NewGate(1, 0)
	l := newLoans("m-0", testLogger(t), nil)
	l.gate = g
	flushes := 0
	l.flush = func(_ context.Context, k sessionkind.Kind) {
		flushes++
		if lent, _ := g.Loans(); lent[k] != 0 {
			t.Errorf("report flushed after lending (%d lent)", lent[k])
		}
	}
	if ans := l.answer([]byte(`{"op":"borrow","from":"m-1","kind":1}`)).(loanAnswer); !ans.Granted || flushes != 1 {
		t.Fatalf("granted %v after %d flushes, want a loan after one", ans.Granted, flushes)
	}
	if ans := l.answer([]byte(`{"op":"borrow","from":"m-2","kind":1}`)).(loanAnswer); ans.Granted || flushes != 1 {
		t.Fatalf("nothing left to lend: granted %v after %d flushes, want a refusal without one", ans.Granted, flushes)
	}
}
