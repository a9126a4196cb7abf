// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// benchWindow bounds the frames a pair has in flight (sent, not yet received),
// below the hub's 1024-frame egress queue, so the benchmark measures what the
// member forwards without loss rather than how fast it tail-drops.
const benchWindow = 768

// pair is one sender and one receiver session through the member.
type pair struct {
	tx, rx *protocol.Conn
	frames [][]byte
	size   int
	got    atomic.Int64
	wake   chan struct{}
	err    chan error
}

// BenchmarkEndToEnd is client -> member -> client over TLS 1.3 on loopback: the
// senders' frames cross the member's reader, hub and writer to the receivers.
// Both clients and the member share the machine's cores, so the member gets
// well under all of them. One op is one frame delivered.
func BenchmarkEndToEnd(b *testing.B) {
	for _, size := range []int{1400, 64} {
		for _, pairs := range []int{1, 4} {
			b.Run(fmt.Sprintf("frame=%d/pairs=%d", size, pairs), func(b *testing.B) {
				benchEndToEnd(b, size, pairs)
			})
		}
	}
}

// BenchmarkEndToEndMemberCPU is BenchmarkEndToEnd with the clients in a child
// process, so the member's own CPU per frame can be read (getrusage of this
// process): Gbit/s/member-core is what one core given to a member forwards. The
// wall-clock Gbit/s still shares the two cores with the clients.
func BenchmarkEndToEndMemberCPU(b *testing.B) {
	for _, size := range []int{1400, 64} {
		for _, pairs := range []int{1, 4} {
			b.Run(fmt.Sprintf("frame=%d/pairs=%d", size, pairs), func(b *testing.B) {
				m := startMember(b, nil)
				per := max(b.N/pairs, 1)
				cpu0, start := cpuTime(), time.Now()
				stop := startChild(b, childEnv{mode: "pairs", addr: m.addr, caFile: m.dir + "/tls.crt",
					req: pw("alpha", "alice", "alice-pw"), n: per, pairs: pairs, size: size})
				elapsed, cpu := time.Since(start), cpuTime()-cpu0
				stop()
				total := float64(per * pairs)
				b.ReportMetric(total*float64(size)*8/elapsed.Seconds()/1e9, "Gbit/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/total, "member-cpu-ns/frame")
				b.ReportMetric(total*float64(size)*8/cpu.Seconds()/1e9, "Gbit/s/member-core")
				b.ReportMetric(total/cpu.Seconds(), "frames/s/member-core")
				if d := m.hubStats(b, "alpha").Switch.Drops; d.QueueFull+d.Oversize > 0 {
					b.Errorf("member dropped frames: %+v", d)
				}
			})
		}
	}
}

func benchEndToEnd(b *testing.B, size, npairs int) { benchEndToEndEdit(b, size, npairs, nil) }

// benchEndToEndEdit is benchEndToEnd on a member whose config edit changes.
func benchEndToEndEdit(b *testing.B, size, npairs int, edit func(*Config)) {
	m := startMember(b, edit)
	ps := make([]*pair, npairs)
	for i := range ps {
		p, err := newPair(m.benchConn(b), m.benchConn(b), i, size)
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	eventually(b, 10*time.Second, "hub did not learn the receivers", func() bool {
		return m.hubStats(b, "alpha").Switch.MACs == npairs
	})
	per := max(b.N/npairs, 1)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	err := runPairs(ps, per)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	total := float64(per * npairs)
	b.ReportMetric(total*float64(size)*8/elapsed.Seconds()/1e9, "Gbit/s")
	b.ReportMetric(total/elapsed.Seconds(), "frames/s")
	sw := m.hubStats(b, "alpha").Switch
	if d := sw.Drops; d.QueueFull+d.Oversize > 0 {
		b.Errorf("member dropped frames: %+v", d)
	}
	// Only the hellos may flood: a flooded benchmark frame would reach every
	// receiver and inflate the count.
	if sw.Flooded > uint64(npairs) {
		b.Errorf("%d frames flooded, want only the %d hellos", sw.Flooded, npairs)
	}
}

// newPair makes pair i: the receiver says hello (a short broadcast) so the hub
// learns its MAC, and the sender's frames are unicast to it.
func newPair(tx, rx *protocol.Conn, i, size int) (*pair, error) {
	p := &pair{tx: tx, rx: rx, size: size, wake: make(chan struct{}, 1), err: make(chan error, 2)}
	src, dst := mac(byte(0x10+i)), mac(byte(0x80+i))
	if err := rx.WriteFrames([][]byte{eth(broadcast, dst, "hello")}); err != nil {
		return nil, err
	}
	f := make([]byte, size)
	copy(f, eth(dst, src, ""))
	for range protocol.MaxBatchFrames {
		p.frames = append(p.frames, f)
	}
	return p, nil
}

// runPairs sends per frames through every pair at once and waits for delivery.
func runPairs(ps []*pair, per int) error {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { p.receive(per) })
		wg.Go(func() { p.send(per) })
	}
	wg.Wait()
	for _, p := range ps {
		select {
		case err := <-p.err:
			return err
		default:
		}
	}
	return nil
}

func (p *pair) send(n int) {
	for sent := 0; sent < n; {
		for int64(sent)-p.got.Load() > benchWindow-protocol.MaxBatchFrames {
			select {
			case <-p.wake:
			case err := <-p.err:
				p.err <- err
				return
			}
		}
		k := min(len(p.frames), n-sent)
		if err := p.tx.WriteFrames(p.frames[:k]); err != nil {
			p.err <- fmt.Errorf("sender: %w", err)
			return
		}
		sent += k
	}
}

func (p *pair) receive(n int) {
	var got int64
	// Other receivers' hellos reach every port; only benchmark frames count.
	count := func(f []byte) {
		if len(f) == p.size {
			got++
		}
	}
	for got < int64(n) {
		if _, err := p.rx.ReadFrames(count); err != nil {
			p.err <- fmt.Errorf("receiver after %d of %d frames: %w", got, n, err)
			return
		}
		p.got.Store(got)
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// benchConn logs alice in on hub alpha and keeps the session alive.
func (m *testMember) benchConn(b *testing.B) *protocol.Conn {
	conn, _, err := m.login(pw("alpha", "alice", "alice-pw"))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = conn.RunKeepalive(ctx) }()
	b.Cleanup(func() { cancel(); conn.Close() })
	return conn
}

// loginBenchMember starts a member whose hub "alpha" has user dan ("correct horse",
// argon2id at the default cost) and logs in once, for the ticket in res.
func loginBenchMember(b *testing.B) (*testMember, *protocol.LoginResult) {
	b.Helper()
	phc, err := auth.HashPassword("correct horse")
	if err != nil {
		b.Fatal(err)
	}
	m := startMember(b, func(c *Config) { c.Hubs[0].Users["dan"] = phc })
	first, res, err := m.login(pw("alpha", "dan", "correct horse"))
	if err != nil {
		b.Fatal(err)
	}
	first.Close()
	return m, res
}

// BenchmarkLogin is a full login on loopback — TCP, TLS 1.3 handshake, login,
// LoginResult, Close — by password (argon2id at auth.DefaultParams, the cost
// `hubfleet hash-password` uses) and by resumption ticket. The clients run in
// this process too and take part of the two cores.
func BenchmarkLogin(b *testing.B) {
	m, res := loginBenchMember(b)
	for _, tc := range []struct {
		name string
		req  protocol.LoginRequest
	}{
		{"password", pw("alpha", "dan", "correct horse")},
		{"ticket", protocol.LoginRequest{Hub: "alpha", User: "dan", Ticket: res.Ticket, Kind: protocol.KindClient}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					conn, _, err := m.login(tc.req)
					if err != nil {
						b.Error(err)
						return
					}
					conn.Close()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
		})
	}
}

// BenchmarkLoginServerCPU is BenchmarkLogin with the clients in a child process,
// so the member's own CPU per login can be read (getrusage of this process):
// logins/s/core is what one core of a member sustains. The wall-clock logins/s
// still share the two cores with the child. "ticket" resumes the client's TLS
// session (the first login of the run excepted), as a reconnecting client does;
// "ticket-fullTLS" makes every handshake a full one, for the ratio in one run.
func BenchmarkLoginServerCPU(b *testing.B) {
	m, res := loginBenchMember(b)
	for _, tc := range []struct {
		name    string
		req     protocol.LoginRequest
		fullTLS bool
	}{
		{"password", pw("alpha", "dan", "correct horse"), false},
		{"ticket", protocol.LoginRequest{Hub: "alpha", User: "dan", Ticket: res.Ticket}, false},
		{"ticket-fullTLS", protocol.LoginRequest{Hub: "alpha", User: "dan", Ticket: res.Ticket}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cpu0, start := cpuTime(), time.Now()
			stop := startChild(b, childEnv{mode: "logins", addr: m.addr, caFile: m.dir + "/tls.crt", req: tc.req, n: b.N, parallel: 8, fullTLS: tc.fullTLS})
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "logins/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-cpu-µs/login")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "logins/s/core")
		})
	}
}

// BenchmarkIdleSessionMemory opens idleSessions sessions from a child process,
// idle but for keepalives, and reports the member's live heap plus goroutine
// stacks per session (after GC, minus the same before), so the clients' memory
// is not counted. Run it with -benchtime=1x; b.N is not used.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const idleSessions = 1000
	m := startMember(b, nil)
	before := liveBytes()
	stop := startChild(b, childEnv{mode: "idle", addr: m.addr, caFile: m.dir + "/tls.crt",
		req: pw("alpha", "alice", "alice-pw"), n: idleSessions, parallel: 8})
	defer stop()
	eventually(b, 30*time.Second, "sessions not all registered", func() bool { return m.srv.Stats().Sessions == idleSessions })
	after := liveBytes()
	b.ReportMetric(float64(after.heap-before.heap)/idleSessions, "heap-B/session")
	b.ReportMetric(float64(after.stack-before.stack)/idleSessions, "stack-B/session")
	b.ReportMetric(float64(after.heap+after.stack-before.heap-before.stack)/idleSessions, "B/session")
}

type live struct{ heap, stack uint64 }

func liveBytes() live {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // the second cycle frees what the first one's finalizers released
	runtime.ReadMemStats(&ms)
	return live{heap: ms.HeapAlloc, stack: ms.StackInuse}
}
