// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package auth

import (
	"testing"
	"time"
)

// BenchmarkVerifyPassword/default is the cost of one password login on a member.
func BenchmarkVerifyPassword(b *testing.B) {
	phc, err := HashPassword("correct horse")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if ok, err := VerifyPassword(phc, "correct horse"); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
	// All cores, as a member under a reconnect storm would run them.
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, err := VerifyPassword(phc, "correct horse"); !ok || err != nil {
					b.Error(ok, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTicket(b *testing.B) {
	cur, prev := testKey(1), testKey(2)
	tk, err := IssueTicket(prev, TicketClaims{User: "alice", Hub: "default/vpn", Kind: 1}, t0)
	if err != nil {
		b.Fatal(err)
	}
	// Worst case: the ticket is from the previous key, so both keys are tried.
	keys := []TicketKey{cur, prev}
	now := t0.Add(time.Minute)
	for b.Loop() {
		if _, err := VerifyTicket(keys, tk, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

func BenchmarkIssueTicket(b *testing.B) {
	k := testKey(1)
	c := TicketClaims{User: "alice", Hub: "default/vpn", Kind: 1}
	for b.Loop() {
		if _, err := IssueTicket(k, c, t0); err != nil {
			b.Fatal(err)
		}
	}
}
