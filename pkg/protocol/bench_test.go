// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/gso"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// rxCounter drains a session and lets the sender wait until n frames have arrived,
// so a throughput figure covers delivery, not only queueing in socket buffers.
type rxCounter struct {
	mu     sync.Mutex
	cond   *sync.Cond
	frames int
	err    error
}

func countFrames(c *Conn) *rxCounter {
	r := &rxCounter{}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		count := func([]byte) {}
		for {
			n, err := c.ReadFrames(count)
			r.mu.Lock()
			r.frames += n
			r.err = err
			r.cond.Broadcast()
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *rxCounter) wait(b *testing.B, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.frames < n && r.err == nil {
		r.cond.Wait()
	}
	if r.frames < n {
		b.Fatalf("receiver stopped after %d of %d frames: %v", r.frames, n, r.err)
	}
}

func send(b *testing.B, c *Conn, frames [][]byte, n int, batched bool) {
	for sent := 0; sent < n; {
		k := min(len(frames), n-sent)
		if batched {
			if err := c.WriteFrames(frames[:k]); err != nil {
				b.Fatal(err)
			}
		} else {
			for i := range k {
				if err := c.WriteFrames(frames[i : i+1]); err != nil {
					b.Fatal(err)
				}
			}
		}
		sent += k
	}
}

func reportRate(b *testing.B, frames, size int, d time.Duration, prefix string) {
	b.ReportMetric(float64(frames*size*8)/d.Seconds()/1e9, prefix+"Gbit/s")
	b.ReportMetric(float64(frames)/d.Seconds(), prefix+"frames/s")
}

// reportCPU reports the CPU time both ends of the session spent per frame, and the
// payload rate that would give one fully used core: the measure that holds on a
// shared machine, where wall-clock rates swing with the neighbours' load.
func reportCPU(b *testing.B, frames, size int, cpu time.Duration, prefix string) {
	if cpu <= 0 {
		return
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(frames), prefix+"cpu-ns/frame")
	b.ReportMetric(float64(frames*size*8)/cpu.Seconds()/1e9, prefix+"Gbit/s/core")
}

// BenchmarkTLSThroughput sends frames client → member over real TLS 1.3 on
// loopback, one op per frame: "batched" writes 128 frames per WriteFrames call,
// "single" one frame per call (one TLS record and one syscall per frame).
func BenchmarkTLSThroughput(b *testing.B) {
	for _, size := range []int{1400, 64} {
		for _, batched := range []bool{true, false} {
			mode := map[bool]string{true: "batched", false: "single"}[batched]
			b.Run(fmt.Sprintf("frame=%d/%s", size, mode), func(b *testing.B) {
				client, member := sessionPair(b, LoginResult{Code: OK})
				rx := countFrames(member)
				frames := make([][]byte, MaxBatchFrames)
				for i := range frames {
					frames[i] = frameOf(size, byte(i))
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				cpu0, _ := testutil.ProcessCPU()
				send(b, client, frames, b.N, batched)
				rx.wait(b, b.N)
				cpu1, _ := testutil.ProcessCPU()
				b.StopTimer()
				reportRate(b, b.N, size, b.Elapsed(), "")
				reportCPU(b, b.N, size, cpu1-cpu0, "")
			})
		}
	}
}

// BenchmarkBatchingGain alternates rounds of batched and one-frame-per-write
// sending on one session, so both rates come from the same run and conditions;
// gain_x is batched frames/s over single frames/s.
func BenchmarkBatchingGain(b *testing.B) {
	const round = 8192
	for _, size := range []int{1400, 64} {
		b.Run(fmt.Sprintf("frame=%d", size), func(b *testing.B) {
			client, member := sessionPair(b, LoginResult{Code: OK})
			rx := countFrames(member)
			frames := make([][]byte, MaxBatchFrames)
			for i := range frames {
				frames[i] = frameOf(size, byte(i))
			}
			var batched, single, batchedCPU, singleCPU time.Duration
			total := 0
			for b.Loop() {
				start, cpu0 := time.Now(), must(testutil.ProcessCPU())
				send(b, client, frames, round, true)
				total += round
				rx.wait(b, total)
				mid, cpu1 := time.Now(), must(testutil.ProcessCPU())
				send(b, client, frames, round, false)
				total += round
				rx.wait(b, total)
				batched += mid.Sub(start)
				single += time.Since(mid)
				batchedCPU += cpu1 - cpu0
				singleCPU += must(testutil.ProcessCPU()) - cpu1
			}
			frames1 := b.N * round
			reportRate(b, frames1, size, batched, "batched_")
			reportRate(b, frames1, size, single, "single_")
			b.ReportMetric(single.Seconds()/batched.Seconds(), "gain_x")
			reportCPU(b, frames1, size, batchedCPU, "batched_")
			reportCPU(b, frames1, size, singleCPU, "single_")
			if batchedCPU > 0 {
				b.ReportMetric(singleCPU.Seconds()/batchedCPU.Seconds(), "cpu_gain_x")
			}
		})
	}
}

func must(d time.Duration, _ bool) time.Duration { return d }

// BenchmarkReadBuffer compares read-buffer sizes in one run: one session per size,
// and rounds of batched frames sent through each in turn, so the machine's load
// falls on all sizes alike. Wall and CPU time per frame are reported per size and
// as ratios to the 64 KiB buffer the Conn used to allocate (x64k_cpu < 1: cheaper).
// The 64 KiB size and the reduction are about memory per idle session; this is
// the throughput check that goes with it.
func BenchmarkReadBuffer(b *testing.B) {
	const round = 8192
	sizes := []int{4 << 10, 16 << 10, 64 << 10}
	for _, size := range []int{1400, 64} {
		b.Run(fmt.Sprintf("frame=%d", size), func(b *testing.B) {
			orig := readBufferSize
			defer func() { readBufferSize = orig }()
			clients := make([]*Conn, len(sizes))
			rxs := make([]*rxCounter, len(sizes))
			for i, bs := range sizes {
				readBufferSize = func(cfg Config) int { return max(bs, cfg.MaxFrame+2) }
				client, member := sessionPair(b, LoginResult{Code: OK})
				clients[i], rxs[i] = client, countFrames(member)
			}
			readBufferSize = orig
			frames := make([][]byte, MaxBatchFrames)
			for i := range frames {
				frames[i] = frameOf(size, byte(i))
			}
			wall := make([]time.Duration, len(sizes))
			cpu := make([]time.Duration, len(sizes))
			total := 0
			for b.Loop() {
				total += round
				for i := range sizes {
					start, cpu0 := time.Now(), must(testutil.ProcessCPU())
					send(b, clients[i], frames, round, true)
					rxs[i].wait(b, total)
					wall[i] += time.Since(start)
					cpu[i] += must(testutil.ProcessCPU()) - cpu0
				}
			}
			n := float64(b.N * round)
			last := len(sizes) - 1
			for i, bs := range sizes {
				name := fmt.Sprintf("%dk_", bs>>10)
				b.ReportMetric(float64(wall[i].Nanoseconds())/n, name+"ns/frame")
				b.ReportMetric(float64(cpu[i].Nanoseconds())/n, name+"cpu-ns/frame")
				if i != last && cpu[last] > 0 {
					b.ReportMetric(wall[i].Seconds()/wall[last].Seconds(), name+"x64k_wall")
					b.ReportMetric(cpu[i].Seconds()/cpu[last].Seconds(), name+"x64k_cpu")
				}
			}
		})
	}
}

// BenchmarkLogin is a full reconnect on loopback: TCP, TLS 1.3 handshake, login,
// with the member checking an argon2id password (default cost) or a resumption
// ticket. Client and member share the machine's two cores.
func BenchmarkLogin(b *testing.B) {
	p := newPKI(b)
	phc, err := auth.HashPassword("correct horse")
	if err != nil {
		b.Fatal(err)
	}
	key, err := auth.NewTicketKey()
	if err != nil {
		b.Fatal(err)
	}
	keys := []auth.TicketKey{key}
	s := startServer(b, ServerTLSConfig(p.server, nil), func(tc *tls.Conn) {
		req, err := ReadLogin(tc)
		if err != nil {
			return
		}
		res := &LoginResult{Code: OK}
		if len(req.Ticket) > 0 {
			c, err := auth.VerifyTicket(keys, req.Ticket, time.Now())
			if err == nil {
				err = c.Check(req.User, req.Hub, req.Kind, auth.CredentialDigest(phc))
			}
			if err != nil {
				res = &LoginResult{Code: BadCredentials, Message: err.Error()}
			}
		} else if ok, err := auth.VerifyPassword(phc, req.Password); !ok || err != nil {
			res = &LoginResult{Code: BadCredentials, Message: "wrong password"}
		}
		if res.Code == OK {
			res.TicketExpiry = time.Now().Add(auth.DefaultTicketTTL)
			res.Ticket, _ = auth.IssueTicket(key, auth.TicketClaims{User: req.User, Hub: req.Hub, Kind: req.Kind, Expiry: res.TicketExpiry}, time.Now())
		}
		_ = WriteResult(tc, res)
		// Wait for the client's Close so the connection ends cleanly.
		_, _ = tc.Read(make([]byte, 64))
	})
	conf := clientConf(b, p)
	login := LoginRequest{Hub: "default/vpn", User: "alice", Password: "correct horse", Kind: KindClient}
	ctx := context.Background()
	c, res, err := Dial(ctx, s.addr, conf, login)
	if err != nil {
		b.Fatal(err)
	}
	c.Close()
	withTicket := login
	withTicket.Password, withTicket.Ticket = "", res.Ticket

	for _, bc := range []struct {
		name string
		req  LoginRequest
	}{{"password", login}, {"ticket", withTicket}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				c, _, err := Dial(ctx, s.addr, conf, bc.req)
				if err != nil {
					if le, ok := errors.AsType[*LoginError](err); ok {
						b.Fatalf("refused: %v", le)
					}
					b.Fatal(err)
				}
				c.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}

// BenchmarkSuperFrames moves one TCP stream client → member over TLS 1.3 on
// loopback three ways, one op per 64 KiB IP packet's worth of data (65549-byte
// frames): as 46 MTU frames of 1514 bytes written in batches ("mtu"), as one
// super-frame per op between GSO sessions ("gso"), and as super-frames written
// to a session without GSO, so the sender segments them in software ("split").
// Gbit/s counts Ethernet frame bytes, the same data in all three.
func BenchmarkSuperFrames(b *testing.B) {
	super, meta := offloadFrame(false, false, 65535-40, 1448)
	var segs [][]byte
	gso.Split(meta, super, make([]byte, MaxSuperFrame), func(s []byte) { segs = append(segs, bytes.Clone(s)) })
	segBytes := 0
	for _, s := range segs {
		segBytes += len(s)
	}
	for _, mode := range []string{"mtu", "gso", "split"} {
		b.Run(mode, func(b *testing.B) {
			offer := uint32(0)
			if mode == "gso" {
				offer = CapGSO
			}
			client, member, _ := gsoPair(b, offer, newServer)
			rx := countFrames(member)
			perOp := 1
			if mode != "gso" {
				perOp = len(segs)
			}
			const window = 32 // ops in flight: 2 MiB, well past the socket buffers
			supers := make([][]byte, window)
			metas := make([]gso.Meta, window)
			for i := range supers {
				supers[i], metas[i] = super, meta
			}
			b.SetBytes(int64(segBytes))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, _ := testutil.ProcessCPU()
			for sent := 0; sent < b.N; {
				k := min(window, b.N-sent)
				var err error
				if mode == "mtu" {
					for range k {
						if err = client.WriteFrames(segs); err != nil {
							break
						}
					}
				} else {
					err = client.WriteFramesGSO(supers[:k], metas[:k])
				}
				if err != nil {
					b.Fatal(err)
				}
				sent += k
			}
			rx.wait(b, b.N*perOp)
			cpu1, _ := testutil.ProcessCPU()
			b.StopTimer()
			b.ReportMetric(float64(b.N*segBytes*8)/b.Elapsed().Seconds()/1e9, "Gbit/s")
			if cpu := cpu1 - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N*segBytes*8)/cpu.Seconds()/1e9, "Gbit/s/core")
			}
		})
	}
}
