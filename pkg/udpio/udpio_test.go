// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package udpio

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// Datagrams written in batches — runs of equal size that GSO sends as one
// message, and odd sizes between them — arrive whole, each once, in order
// (loopback neither loses nor reorders).
func TestBatchRoundTrip(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1:0"
			if network == "udp6" {
				host = "[::1]:0"
			}
			a, err := Listen(network, host)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer a.Close()
			b, err := Listen(network, host)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			gso, gro := a.Offloads()
			t.Logf("GSO %v, GRO %v", gso, gro)

			var sent [][]byte
			for i := range 300 {
				size := 1200
				if i%7 == 3 {
					size = 100 + i
				}
				d := make([]byte, size)
				binary.BigEndian.PutUint32(d, uint32(i))
				for j := 4; j < size; j++ {
					d[j] = byte(i + j)
				}
				sent = append(sent, d)
			}
			for i := 0; i < len(sent); i += 50 {
				if err := a.WriteBatch(b.LocalAddr(), sent[i:i+50]); err != nil {
					t.Fatal(err)
				}
			}
			var got [][]byte
			deadline := time.Now().Add(10 * time.Second)
			for len(got) < len(sent) && time.Now().Before(deadline) {
				b.uc.SetReadDeadline(deadline)
				err := b.ReadBatch(func(d []byte, from netip.AddrPort) {
					if from != a.LocalAddr() && from.Port() != a.LocalAddr().Port() {
						t.Errorf("from %v, want %v", from, a.LocalAddr())
					}
					got = append(got, bytes.Clone(d))
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != len(sent) {
				t.Fatalf("%d of %d datagrams arrived", len(got), len(sent))
			}
			for i := range sent {
				if !bytes.Equal(got[i], sent[i]) {
					t.Fatalf("datagram %d: %d bytes, want %d (id %d)", i, len(got[i]), len(sent[i]), binary.BigEndian.Uint32(got[i]))
				}
			}
		})
	}
}

func TestBatchNoAllocs(t *testing.T) {
	a, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	batch := [][]byte{make([]byte, 1400), make([]byte, 1400), make([]byte, 300)}
	to := b.LocalAddr()
	n := 0
	count := func(d []byte, _ netip.AddrPort) { n++ }
	run := func() {
		if err := a.WriteBatch(to, batch); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(batch); got += n {
			n = 0
			if err := b.ReadBatch(count); err != nil {
				t.Fatal(err)
			}
		}
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs > 0 && runtime.GOOS == "linux" {
		t.Fatalf("%v allocations per batch", allocs)
	}
}

// A member listens dual-stack (":port"); IPv4 clients reach it and its
// answers reach them (written as IPv4-mapped addresses).
func TestDualStackAnswersIPv4(t *testing.T) {
	srv, err := Listen("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), srv.LocalAddr().Port())
	if err := cli.WriteBatch(to, [][]byte{[]byte("ping")}); err != nil {
		t.Fatal(err)
	}
	var from netip.AddrPort
	srv.uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := srv.ReadBatch(func(d []byte, f netip.AddrPort) { from = f }); err != nil {
		t.Fatal(err)
	}
	if !from.Addr().Is4() || from.Port() != cli.LocalAddr().Port() {
		t.Fatalf("sender seen as %v, want 127.0.0.1:%d", from, cli.LocalAddr().Port())
	}
	if err := srv.WriteBatch(from, [][]byte{[]byte("pong")}); err != nil {
		t.Fatal(err)
	}
	var got string
	cli.uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := cli.ReadBatch(func(d []byte, _ netip.AddrPort) { got = string(d) }); err != nil || got != "pong" {
		t.Fatalf("answer %q, %v", got, err)
	}
}

// BenchmarkLoopback sends batches of 64 1400-byte datagrams over the
// loopback with sendmmsg (UDP GSO where the kernel has it) to a receiver
// reading with recvmmsg (and GRO): the sender's cost per datagram, and the
// share the receiver took in.
func BenchmarkLoopback(b *testing.B) {
	a, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	r, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	gsoOn, groOn := a.Offloads()
	b.Logf("GSO %v, GRO %v", gsoOn, groOn)
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = make([]byte, 1400)
	}
	to := r.LocalAddr()
	got := 0
	count := func(d []byte, _ netip.AddrPort) { got++ }
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if r.ReadBatch(count) != nil {
				return
			}
		}
	}()
	b.SetBytes(int64(len(batch) * 1400))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.WriteBatch(to, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/datagram")
	r.Close()
	<-done
	// The sender is not flow-controlled: what the receiver kept up with.
	b.ReportMetric(float64(got)/float64(b.N*len(batch)), "received/sent")
}
