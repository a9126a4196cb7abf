// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/ratelimit"
)

// Per-user limits (VirtualHub spec.userLimits, docs/user-guide.md "Per-user
// limits"): sessions per user on a hub, and a token bucket per session and
// direction.
//
// Ingress (what a session sends into the hub) is paced: the session's reader
// waits for the budget before it reads further from TLS, so the client's
// TCP connection fills and its sender slows down; nothing is dropped here.
// Egress (what the hub sends to the session) is shaped: the writer waits for
// the budget between writes, the frames meanwhile wait in the session's port
// queue, and of those only what can leave within maxQueueDelay is kept: the
// oldest beyond it are dropped (head drop, counted), so the queue stays
// short and TCP flows inside the tunnel see a loss early rather than seconds
// of queue.

// Bounds of sessionRate, as the CRD's validation states them.
var (
	minBitsPerSecond = resource.MustParse("1M")
	maxBitsPerSecond = resource.MustParse("1T")
	minBurstBytes    = resource.MustParse("1500")
	maxBurstBytes    = resource.MustParse("1Gi")
)

// maxQueueDelay bounds how long frames wait for a rate-limited session's
// budget in its egress queue; older frames are dropped.
const maxQueueDelay = 100 * time.Millisecond

// UserLimitSettings returns the limits of u as a member applies them: the
// sessions one user may hold on the hub (0: no limit) and each session's
// rate per direction (nil: none). The error names each wrong field, as the
// CRD's validation does, for configurations that did not pass through it (a
// member config file).
func UserLimitSettings(u *v1alpha1.UserLimitsSpec) (maxPerUser int, rate *ratelimit.Limit, err error) {
	if u == nil {
		return 0, nil, nil
	}
	var errs []error
	if m := u.MaxSessionsPerUser; m != nil {
		if *m < 1 {
			errs = append(errs, fmt.Errorf("maxSessionsPerUser %d must be at least 1: leave it out for no limit per user", *m))
		}
		maxPerUser = int(*m)
	}
	if r := u.SessionRate; r != nil {
		bps := r.BitsPerSecond
		switch {
		case bps.Cmp(minBitsPerSecond) < 0:
			errs = append(errs, fmt.Errorf("sessionRate.bitsPerSecond %s must be at least 1M (1 Mbit/s), written like 10M or 1G", bps.String()))
		case bps.Cmp(maxBitsPerSecond) > 0:
			errs = append(errs, fmt.Errorf("sessionRate.bitsPerSecond %s must be at most 1T (1 Tbit/s): leave sessionRate out for no limit", bps.String()))
		}
		l := ratelimit.Limit{BytesPerSecond: max(1, bps.Value()/8)}
		l.Burst = ratelimit.DefaultBurst(l.BytesPerSecond)
		if b := r.BurstBytes; b != nil {
			if b.Cmp(minBurstBytes) < 0 || b.Cmp(maxBurstBytes) > 0 {
				errs = append(errs, fmt.Errorf("sessionRate.burstBytes %s must be from 1500 (one full frame) to 1Gi bytes, written like 256Ki; leave it out for 50 ms at the rate", b.String()))
			}
			l.Burst = b.Value()
		}
		rate = &l
	}
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	return maxPerUser, rate, nil
}

// userLimitRefusal is the message of a login refused for the per-user limit.
func userLimitRefusal(user, hub, member string, limit int) string {
	return fmt.Sprintf("user %q already has %d sessions on hub %q (maxSessionsPerUser %d, counted on member %s); end one of them, or ask your administrator to raise spec.userLimits.maxSessionsPerUser",
		user, limit, hub, limit, member)
}

// paceIn charges the frame just read against the session's ingress budget
// and, once the budget is spent, forwards what was read so far and waits
// until it is paid before reading on. Reader goroutine only.
func (se *session) paceIn(rl *ratelimit.Limit, n int) {
	b := &se.inBucket
	if se.inLimit != rl {
		b.Reset(*rl, time.Now())
		se.inLimit = rl
	}
	if !b.Take(n) {
		return
	}
	d := b.Delay(time.Now())
	if d <= 0 {
		return
	}
	if len(se.in) > 0 {
		se.forward(se.in)
		clear(se.in)
		se.in = se.in[:0]
	}
	se.inSleep.Sleep(d, se.conn.Done(), nil)
}

// writePaced writes the first n frames of wb within the session's egress
// budget: the frames beyond what can leave within maxQueueDelay are dropped
// from the head, the rest go out in runs, waiting for the budget between
// runs. Writer goroutine only.
func (se *session) writePaced(ctx context.Context, rl *ratelimit.Limit, wb *writeBatch, n int) error {
	b := &se.outBucket
	now := time.Now()
	if se.outLimit != rl {
		b.Reset(*rl, now)
		se.outLimit = rl
	}
	var inHand int64
	for _, f := range wb.bufs[:n] {
		inHand += int64(len(f))
	}
	// The bytes waiting for this session: those in hand and, estimated at
	// their average size, the frames still queued on the port.
	waiting := inHand + int64(se.port.Queued())*inHand/int64(n)
	excess := waiting - (b.Available(now) + rl.BytesIn(maxQueueDelay))
	k := 0
	for i := range n {
		if excess > 0 {
			excess -= int64(len(wb.bufs[i]))
			se.hs.rateDrops.Add(1)
			continue
		}
		wb.bufs[k], wb.metas[k], wb.rooms[k] = wb.bufs[i], wb.metas[i], wb.rooms[i]
		k++
	}
	start := 0
	for i := range k {
		if !b.Take(len(wb.bufs[i])) {
			continue
		}
		d := b.Delay(time.Now())
		if d <= 0 {
			continue
		}
		if err := se.writeOut(wb.bufs[start:i+1], wb.metas[start:i+1], wb.rooms[start:i+1]); err != nil {
			return err
		}
		start = i + 1
		if !se.outSleep.Sleep(d, ctx.Done(), se.conn.Done()) {
			return context.Canceled
		}
	}
	if start < k {
		return se.writeOut(wb.bufs[start:k], wb.metas[start:k], wb.rooms[start:k])
	}
	return nil
}

// rateDrops returns, per hub, the frames its sessions' egress shapers dropped.
func (s *Server) rateDrops() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.hubs))
	for name, hs := range s.hubs {
		out[name] = hs.rateDrops.Load()
	}
	return out
}
