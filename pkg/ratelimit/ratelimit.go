// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package ratelimit is a token bucket of bytes for one direction of one
// session. A Bucket has no lock: it belongs to the one goroutine that moves
// that direction's frames (a session's reader or its writer), so charging a
// frame is a subtraction and a compare, and reads the clock only when the
// budget already looked spent. Nothing allocates after New.
//
// The bucket may go into debt: a frame larger than what is left (even larger
// than the burst) is charged whole, and the caller then waits Delay for the
// debt to be paid. So a frame of any size passes, and the long-run rate holds
// exactly whatever the frame sizes.
package ratelimit

import (
	"fmt"
	"time"
)

// Limit is a rate and a burst.
type Limit struct {
	// BytesPerSecond is the sustained rate; it must be positive.
	BytesPerSecond int64
	// Burst is how many bytes may pass at once after an idle spell: the
	// bucket's size. It must be positive.
	Burst int64
}

// DefaultBurst is the burst for a rate when none is given: 50 ms at the
// rate, at least 64 KiB (one super-frame), so a TCP flow through the limit
// is not cut to less than one window's worth of sending.
func DefaultBurst(bytesPerSecond int64) int64 {
	return max(bytesPerSecond/20, 64<<10)
}

// Validate says what is wrong with l, or nil.
func (l Limit) Validate() error {
	if l.BytesPerSecond <= 0 {
		return fmt.Errorf("rate %d bytes/s must be positive", l.BytesPerSecond)
	}
	if l.Burst <= 0 {
		return fmt.Errorf("burst %d bytes must be positive", l.Burst)
	}
	return nil
}

// Bucket is a token bucket of bytes, used by one goroutine. Tokens are kept
// as bytes × 1e9, so that a refill is integer arithmetic on the elapsed
// nanoseconds (elapsed ns × bytes/s) with no rounding loss.
type Bucket struct {
	rate   int64 // bytes per second
	size   int64 // burst, scaled
	tokens int64 // scaled; negative is debt
	last   time.Time
}

// scale is the factor between bytes and the bucket's internal unit.
const scale = int64(time.Second)

// maxBurst keeps the scaled burst within int64 with room for debt: about 4 GB.
const maxBurst = (1 << 62) / scale

// New returns a full bucket for l (which must be valid) as of now.
func New(l Limit, now time.Time) *Bucket {
	b := &Bucket{}
	b.Reset(l, now)
	return b
}

// Reset gives b the limit l, full, as of now.
func (b *Bucket) Reset(l Limit, now time.Time) {
	b.rate = max(l.BytesPerSecond, 1)
	b.size = min(max(l.Burst, 1), maxBurst) * scale
	b.tokens = b.size
	b.last = now
}

// Limit is the bucket's limit.
func (b *Bucket) Limit() Limit { return Limit{BytesPerSecond: b.rate, Burst: b.size / scale} }

// Take charges n bytes and reports whether the tokens counted at the last
// refill are spent: then the caller asks Delay, which reads what the time
// since has earned. A bucket with tokens left costs one subtraction and no
// clock read.
func (b *Bucket) Take(n int) (spent bool) {
	b.tokens -= int64(n) * scale
	return b.tokens < 0
}

// Debt is how many bytes the bucket owes as of its last refill (0 if none).
func (b *Bucket) Debt() int64 {
	if b.tokens >= 0 {
		return 0
	}
	return (-b.tokens + scale - 1) / scale
}

// Refund gives n bytes back, for a frame charged and then not sent.
func (b *Bucket) Refund(n int) {
	b.tokens = min(b.tokens+int64(n)*scale, b.size)
}

// Delay is how long after now the debt is paid: 0 when the bucket is not in
// debt. It refills first.
func (b *Bucket) Delay(now time.Time) time.Duration {
	if b.tokens >= 0 {
		return 0
	}
	b.refill(now)
	if b.tokens >= 0 {
		return 0
	}
	// -tokens scaled bytes at rate bytes/s: -tokens/rate ns, rounded up.
	return time.Duration((-b.tokens + b.rate - 1) / b.rate)
}

// refill adds what the time since the last refill earned, up to the burst.
func (b *Bucket) refill(now time.Time) {
	el := now.Sub(b.last)
	if el <= 0 {
		return
	}
	b.last = now
	// The bucket is full after (size - tokens)/rate ns; a longer spell would
	// only overflow the product.
	if need := (b.size - b.tokens) / b.rate; int64(el) >= need {
		b.tokens = b.size
		return
	}
	b.tokens += int64(el) * b.rate
}

// BytesIn is how many bytes the limit passes in d (without the burst),
// without overflowing for any rate up to 1 Tbit/s and d up to hours.
func (l Limit) BytesIn(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	return l.BytesPerSecond/1000*ms + l.BytesPerSecond%1000*ms/1000
}

// Available is the bytes the bucket holds as of now (after refilling):
// negative while in debt.
func (b *Bucket) Available(now time.Time) int64 {
	b.refill(now)
	return b.tokens / scale
}

// Sleeper waits out a Bucket's delays with one timer it keeps, so pacing
// allocates once per goroutine, not per wait.
type Sleeper struct{ t *time.Timer }

// Sleep waits d, or until a or b closes (nil never does); false if it was cut
// short.
func (s *Sleeper) Sleep(d time.Duration, a, b <-chan struct{}) bool {
	if s.t == nil {
		s.t = time.NewTimer(d)
	} else {
		s.t.Reset(d)
	}
	select {
	case <-s.t.C:
		return true
	case <-a:
	case <-b:
	}
	s.t.Stop()
	return false
}
