// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubfleet/hubfleet/pkg/license"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/mesh"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

// License loans between members (docs/member-cluster.md, "Licenses"). The
// operator splits a cluster's licenses into per-member allocations, but
// every session of a dynamic hub lands on its owner, so a burst of logins
// there ran out while the other members' licenses sat idle. Now a member
// whose own are in use borrows one from a peer over the mesh, at the moment
// of the login: the lender takes it out of its own allocation before
// answering (license.Gate.Lend), so the members never admit more than the
// total whatever order things happen in. The borrower gives it back as
// soon as it has one free (on each renewal).
//
// Losing track: the borrower reports what it holds, per lender, in its
// Lease load on every renewal. A lender rebuilds its loans from those
// reports when it starts, and writes a loan off once a report made after
// its last lend to that member no longer shows it (the repayment's call was
// lost, or the borrower restarted). A borrower drops — stops admitting on —
// the licenses of a lender that failed (its Lease expired or was claimed);
// the sessions admitted on them go on, as with any lowered allocation, and
// stay in its reports until they end, so the lender, restarted, counts them.

// loanBudget bounds the borrowing a login waits for; flushBudget the part
// of it a lender spends bringing its Lease report up to date first.
const (
	loanBudget  = 500 * time.Millisecond
	flushBudget = 200 * time.Millisecond
)

type loanCall struct {
	Op   string           `json:"op"` // "borrow" or "repay"
	From string           `json:"from"`
	Kind sessionkind.Kind `json:"kind"`
}

type loanAnswer struct {
	Granted bool `json:"granted"`
}

type loans struct {
	self string
	log  *slog.Logger
	mesh *mesh.Mesh
	gate *license.Gate
	view *atomic.Pointer[view]
	// flush brings the member's Lease report of a kind's sessions up to
	// date (Member.flushLoad).
	flush func(context.Context, sessionkind.Kind)

	mu     sync.Mutex
	lentTo map[string][sessionkind.N]int // borrower -> licenses lent to it
	lentAt map[string]time.Time          // borrower -> last lend
	from   map[string][sessionkind.N]int // lender -> licenses borrowed from it
	// frozen are licenses borrowed from lenders that failed: no longer
	// admitted on, but reported while sessions admitted on them last, so a
	// lender that restarts counts them as lent (it rebuilds from reports).
	frozen map[string][sessionkind.N]int
}

func newLoans(self string, log *slog.Logger, v *atomic.Pointer[view]) *loans {
	return &loans{self: self, log: log, view: v, lentTo: map[string][sessionkind.N]int{}, lentAt: map[string]time.Time{}, from: map[string][sessionkind.N]int{}, frozen: map[string][sessionkind.N]int{}}
}

// borrow is member.Options.Borrow: ask the peers, those with the most free
// licenses (the operator's last figures) first, until one lends.
func (l *loans) borrow(ctx context.Context, k sessionkind.Kind) bool {
	v := l.view.Load()
	peers := slices.Collect(maps.Keys(v.peers))
	slices.SortFunc(peers, func(a, b string) int {
		return cmp.Or(cmp.Compare(v.routes.free[b][k], v.routes.free[a][k]), cmp.Compare(a, b))
	})
	ctx, cancel := context.WithTimeout(ctx, loanBudget)
	defer cancel()
	for _, p := range peers {
		var ans loanAnswer
		if err := l.mesh.Call(ctx, p, loanCall{Op: "borrow", From: l.self, Kind: k}, &ans); err != nil {
			l.log.Info("license loan: peer not reachable", "peer", p, "err", err)
			continue
		}
		if !ans.Granted {
			continue
		}
		l.mu.Lock()
		n := l.from[p]
		n[k]++
		l.from[p] = n
		l.gate.AddBorrowed(k)
		l.mu.Unlock()
		l.log.Info("borrowed a license from a peer", "kind", k, "lender", p)
		return true
	}
	return false
}

// answer is the lender's side (mesh.Options.OnCall).
func (l *loans) answer(req []byte) any {
	var c loanCall
	if err := json.Unmarshal(req, &c); err != nil || !c.Kind.Valid() || c.From == "" || c.From == l.self {
		return loanAnswer{}
	}
	if c.Op == "borrow" && l.flush != nil && l.gate.Lendable(c.Kind) {
		ctx, cancel := context.WithTimeout(context.Background(), flushBudget)
		l.flush(ctx, c.Kind)
		cancel()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.lentTo[c.From]
	switch c.Op {
	case "borrow":
		if !l.gate.Lend(c.Kind) {
			return loanAnswer{}
		}
		n[c.Kind]++
		l.lentAt[c.From] = time.Now()
	case "repay":
		n[c.Kind] = max(n[c.Kind]-1, 0)
	default:
		return loanAnswer{}
	}
	l.lentTo[c.From] = n
	l.setLentLocked()
	return loanAnswer{Granted: true}
}

// setLentLocked gives the gate the sum of the loans. l.mu must be held.
func (l *loans) setLentLocked() {
	var sum [sessionkind.N]int
	for _, n := range l.lentTo {
		for k := range n {
			sum[k] += n[k]
		}
	}
	l.gate.SetLent(sessionkind.Client, sum[sessionkind.Client])
	l.gate.SetLent(sessionkind.Bridge, sum[sessionkind.Bridge])
}

// repayment is one borrowed license dropped, to be given back.
type repayment struct {
	lender string
	kind   sessionkind.Kind
}

// takeSurplus drops every borrowed license this member has free and
// returns them for giveBack; the renewal loop calls it before each renewal
// and gives them back after it, so the report shows them gone before the
// lender can use them again. A lost repayment is written off by the lender
// from that report.
func (l *loans) takeSurplus() []repayment {
	var out []repayment
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []sessionkind.Kind{sessionkind.Client, sessionkind.Bridge} {
		for {
			lender := ""
			for p, n := range l.from {
				if n[k] > 0 {
					lender = p
					break
				}
			}
			if lender == "" || !l.gate.TakeSurplus(k) {
				break
			}
			n := l.from[lender]
			n[k]--
			l.from[lender] = n
			out = append(out, repayment{lender: lender, kind: k})
		}
	}
	return out
}

// giveBack tells the lenders, without waiting for their answers.
func (l *loans) giveBack(ctx context.Context, back []repayment) {
	for _, r := range back {
		go func() {
			var ans loanAnswer
			if err := l.mesh.Call(ctx, r.lender, loanCall{Op: "repay", From: l.self, Kind: r.kind}, &ans); err != nil {
				l.log.Info("license repayment not delivered; the lender writes it off from the next Lease report", "lender", r.lender, "err", err)
			}
		}()
	}
}

// thaw shrinks the frozen loans to the sessions still beyond what the gate
// admits without them. l.mu must be held.
func (l *loans) thawLocked() {
	inC, inB := l.gate.InUse()
	effC, effB := l.gate.Effective()
	excess := [sessionkind.N]int{}
	excess[sessionkind.Client], excess[sessionkind.Bridge] = max(inC-effC, 0), max(inB-effB, 0)
	for _, k := range []sessionkind.Kind{sessionkind.Client, sessionkind.Bridge} {
		total := 0
		for _, n := range l.frozen {
			total += n[k]
		}
		for p, n := range l.frozen {
			if total <= excess[k] {
				break
			}
			d := min(n[k], total-excess[k])
			n[k] -= d
			total -= d
			l.frozen[p] = n
		}
	}
	for p, n := range l.frozen {
		if n == ([sessionkind.N]int{}) {
			delete(l.frozen, p)
		}
	}
}

// borrowed is this member's report for its Lease load: live and frozen
// loans by lender.
func (l *loans) borrowed() map[string]memberlease.HubLoad {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.thawLocked()
	var out map[string]memberlease.HubLoad
	for _, m := range []map[string][sessionkind.N]int{l.from, l.frozen} {
		for p, n := range m {
			if n[sessionkind.Client]+n[sessionkind.Bridge] == 0 {
				continue
			}
			if out == nil {
				out = map[string]memberlease.HubLoad{}
			}
			h := out[p]
			h.Client += int32(n[sessionkind.Client])
			h.Bridge += int32(n[sessionkind.Bridge])
			out[p] = h
		}
	}
	return out
}

// loanReport is one peer's side of the loans, from its Lease.
type loanReport struct {
	peer     string
	live     bool                // its Lease is fresh and its own
	failed   bool                // expired, claimed, or its process is gone
	renewed  time.Time           // its Lease's renewTime
	borrowed memberlease.HubLoad // what it reports borrowed from this member
}

// loanReports are the peers' reports in a judgement (pure).
func loanReports(self string, peers []peerState) []loanReport {
	out := make([]loanReport, 0, len(peers))
	for _, p := range peers {
		if p.name == self {
			continue
		}
		r := loanReport{peer: p.name, live: p.live, failed: p.failed, borrowed: p.load.Borrowed[self]}
		if p.lease != nil && p.lease.Spec.RenewTime != nil {
			r.renewed = p.lease.Spec.RenewTime.Time
		}
		out = append(out, r)
	}
	return out
}

// reconcile brings the loans in line with the peers' reports (the loop
// calls it each pass): a lender rebuilds and writes off, a borrower drops
// the licenses of failed lenders.
func (l *loans) reconcile(reports []loanReport) {
	if reports == nil {
		// No judgement this pass (the VPNCluster is not in the cache): the
		// members are unknown, which is not "nobody borrows any more".
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	known := map[string]bool{}
	for _, r := range reports {
		known[r.peer] = true
		rep := [sessionkind.N]int{}
		rep[sessionkind.Client], rep[sessionkind.Bridge] = int(r.borrowed.Client), int(r.borrowed.Bridge)
		if r.live {
			n := l.lentTo[r.peer]
			for k := range n {
				if r.renewed.After(l.lentAt[r.peer].Add(clockSkew)) {
					n[k] = rep[k] // reported after our last lend: it knows best
				} else {
					n[k] = max(n[k], rep[k])
				}
			}
			if n != ([sessionkind.N]int{}) {
				l.lentTo[r.peer] = n
			} else {
				delete(l.lentTo, r.peer)
			}
		}
		if r.failed {
			if n, ok := l.from[r.peer]; ok {
				f := l.frozen[r.peer]
				for _, k := range []sessionkind.Kind{sessionkind.Client, sessionkind.Bridge} {
					l.gate.DropBorrowed(k, n[k])
					f[k] += n[k]
				}
				l.frozen[r.peer] = f
				delete(l.from, r.peer)
				l.log.Warn("dropped the licenses borrowed from a failed peer; sessions on them go on, and are reported until they end", "lender", r.peer)
			}
		}
	}
	for p := range l.lentTo {
		if !known[p] {
			delete(l.lentTo, p) // no longer a member of the cluster
		}
	}
	l.setLentLocked()
}
