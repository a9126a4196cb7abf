// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package ratelimit

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// A full bucket lets its burst through without a delay, and the next byte
// waits exactly one byte's time.
func TestBurstThenRate(t *testing.T) {
	b := New(Limit{BytesPerSecond: 1000, Burst: 500}, t0)
	if b.Take(500) {
		t.Fatal("the burst itself is reported spent")
	}
	if d := b.Delay(t0); d != 0 {
		t.Fatalf("delay after exactly the burst = %v, want 0", d)
	}
	if !b.Take(1) {
		t.Fatal("a byte beyond the burst is not reported spent")
	}
	if d := b.Delay(t0); d != time.Millisecond {
		t.Fatalf("delay for 1 byte at 1000 B/s = %v, want 1ms", d)
	}
}

// Over a long run of frames of any size, paying each delay, the bytes passed
// equal rate × time + burst: the bucket neither leaks nor gains tokens, and a
// frame larger than the burst goes through (in debt) instead of sticking.
func TestLongRunRateIsExact(t *testing.T) {
	const rate, burst = 125_000, 1500 // 1 Mbit/s
	b := New(Limit{BytesPerSecond: rate, Burst: burst}, t0)
	now := t0
	sent := 0
	sizes := []int{60, 1514, 9000, 64000, 333, 1}
	for i := 0; now.Sub(t0) < 10*time.Second; i++ {
		n := sizes[i%len(sizes)]
		sent += n
		if b.Take(n) {
			now = now.Add(b.Delay(now))
		}
	}
	el := now.Sub(t0).Seconds()
	want := rate*el + burst
	if got := float64(sent); got > want+64000 || got < want-64000 {
		t.Fatalf("sent %d bytes in %.3fs, want %.0f ± one frame", sent, el, want)
	}
}

// An idle spell refills the bucket to its burst and no further.
func TestRefillCapsAtBurst(t *testing.T) {
	b := New(Limit{BytesPerSecond: 1000, Burst: 2000}, t0)
	b.Take(2000)
	if got := b.Available(t0.Add(time.Hour)); got != 2000 {
		t.Fatalf("after an hour idle: %d bytes available, want the burst 2000", got)
	}
	b.Take(5000)
	if got := b.Available(t0.Add(time.Hour)); got != -3000 {
		t.Fatalf("debt = %d, want -3000", got)
	}
	if d := b.Delay(t0.Add(time.Hour)); d != 3*time.Second {
		t.Fatalf("delay = %v, want 3s", d)
	}
}

// Refund returns a charge, never beyond the burst.
func TestRefund(t *testing.T) {
	b := New(Limit{BytesPerSecond: 1000, Burst: 1000}, t0)
	b.Take(1500)
	b.Refund(1500)
	if got := b.Available(t0); got != 1000 {
		t.Fatalf("after a refund: %d, want 1000", got)
	}
	b.Refund(10)
	if got := b.Available(t0); got != 1000 {
		t.Fatalf("refund past the burst: %d, want 1000", got)
	}
}

// Extreme limits do not overflow: 1 Tbit/s with a 1 GiB burst, after a long
// idle spell and a large debt.
func TestNoOverflow(t *testing.T) {
	b := New(Limit{BytesPerSecond: 125_000_000_000, Burst: 1 << 30}, t0)
	b.Take(1 << 30)
	b.Take(1 << 20)
	if d := b.Delay(t0); d <= 0 || d > time.Millisecond {
		t.Fatalf("delay for 1 MiB at 1 Tbit/s = %v", d)
	}
	if got := b.Available(t0.Add(1000 * time.Hour)); got != 1<<30 {
		t.Fatalf("after 1000 h: %d, want %d", got, 1<<30)
	}
	b = New(Limit{BytesPerSecond: 1, Burst: 1}, t0)
	b.Take(1 << 20)
	if d := b.Delay(t0); d != (1<<20-1)*time.Second {
		t.Fatalf("delay at 1 B/s = %v", d)
	}
}

// BytesIn does not overflow at the largest rate the API allows.
func TestBytesIn(t *testing.T) {
	for _, c := range []struct {
		rate int64
		d    time.Duration
		want int64
	}{
		{125_000_000_000, 100 * time.Millisecond, 12_500_000_000}, // 1 Tbit/s
		{125_000, 100 * time.Millisecond, 12_500},
		{1_999, time.Second, 1_999},
		{125_000_000_000, time.Hour, 450_000_000_000_000},
	} {
		if got := (Limit{BytesPerSecond: c.rate}).BytesIn(c.d); got != c.want {
			t.Errorf("%d B/s in %v = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}

func TestValidateAndDefaultBurst(t *testing.T) {
	if (Limit{BytesPerSecond: 0, Burst: 1}).Validate() == nil || (Limit{BytesPerSecond: 1, Burst: 0}).Validate() == nil {
		t.Fatal("a zero rate or burst is valid")
	}
	if got := DefaultBurst(125_000); got != 64<<10 {
		t.Fatalf("DefaultBurst(1 Mbit/s) = %d, want 64 KiB", got)
	}
	if got := DefaultBurst(12_500_000); got != 625_000 {
		t.Fatalf("DefaultBurst(100 Mbit/s) = %d, want 50 ms = 625000", got)
	}
}

// Sleep waits its time, and returns early when a channel closes.
func TestSleeper(t *testing.T) {
	var s Sleeper
	start := time.Now()
	if !s.Sleep(5*time.Millisecond, nil, nil) {
		t.Fatal("an uninterrupted sleep reports it was cut short")
	}
	if el := time.Since(start); el < 5*time.Millisecond {
		t.Fatalf("slept %v, want ≥ 5ms", el)
	}
	done := make(chan struct{})
	close(done)
	start = time.Now()
	if s.Sleep(time.Hour, nil, done) {
		t.Fatal("a sleep cut short by a closed channel reports it was not")
	}
	if el := time.Since(start); el > time.Minute {
		t.Fatalf("a cut-short sleep took %v", el)
	}
	if !s.Sleep(time.Millisecond, nil, nil) {
		t.Fatal("the timer is not reusable after a cut-short sleep")
	}
}

// BenchmarkTake is the per-frame cost with tokens left: the common case.
func BenchmarkTake(b *testing.B) {
	bk := New(Limit{BytesPerSecond: 1 << 40, Burst: 1 << 30}, time.Now())
	b.ReportAllocs()
	for i := range b.N {
		if bk.Take(1500) {
			bk.Delay(time.Now())
		}
		if i&0xfffff == 0 {
			bk.Refund(1 << 30)
		}
	}
}

// BenchmarkTakeSpent is the cost per frame when every frame reads the clock:
// a bucket running at its limit.
func BenchmarkTakeSpent(b *testing.B) {
	bk := New(Limit{BytesPerSecond: 1, Burst: 1}, time.Now())
	b.ReportAllocs()
	for range b.N {
		bk.Take(1500)
		bk.Delay(time.Now())
		bk.Refund(1500)
	}
}
