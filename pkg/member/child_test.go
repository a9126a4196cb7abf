// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// Benchmarks that must not count the clients' cost against the member run the
// clients in a child process: this test binary again, with HUBFLEET_CHILD set.
// The child prints "ready" when its work is done (or, for idle sessions, when
// they are all logged in) and exits when its stdin closes.

// childEnv is the child's work order.
type childEnv struct {
	mode     string // "idle": open n sessions and hold them; "logins": n logins
	addr     string
	caFile   string
	req      protocol.LoginRequest
	n        int
	parallel int
	pairs    int // mode "pairs": sender/receiver pairs sending n frames each
	size     int // of size bytes
	// fullTLS: no TLS session cache, so every login is a full handshake
	// (certificate signature included), as before TLS resumption.
	fullTLS bool
}

// startChild runs the child and waits for its "ready" line. stop ends it.
func startChild(b *testing.B, ce childEnv) (stop func()) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildClients$", "-test.v")
	cmd.Env = append(os.Environ(),
		"HUBFLEET_CHILD="+ce.mode, "HUBFLEET_CHILD_ADDR="+ce.addr, "HUBFLEET_CHILD_CA="+ce.caFile,
		"HUBFLEET_CHILD_HUB="+ce.req.Hub, "HUBFLEET_CHILD_USER="+ce.req.User,
		"HUBFLEET_CHILD_PASSWORD="+ce.req.Password, "HUBFLEET_CHILD_TICKET="+hex.EncodeToString(ce.req.Ticket),
		"HUBFLEET_CHILD_N="+strconv.Itoa(ce.n), "HUBFLEET_CHILD_PARALLEL="+strconv.Itoa(max(ce.parallel, 1)),
		"HUBFLEET_CHILD_PAIRS="+strconv.Itoa(ce.pairs), "HUBFLEET_CHILD_SIZE="+strconv.Itoa(ce.size),
		"HUBFLEET_CHILD_FULLTLS="+strconv.FormatBool(ce.fullTLS))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() {
		if sc.Text() == "ready" {
			break
		}
		lines = append(lines, sc.Text())
	}
	stop = func() {
		stdin.Close()
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}
	if sc.Err() != nil || cmd.ProcessState != nil {
		stop()
		b.Fatalf("client process failed: %v %q", sc.Err(), lines)
	}
	return stop
}

// TestChildClients is the child's body; it is skipped in normal test runs.
func TestChildClients(t *testing.T) {
	mode := os.Getenv("HUBFLEET_CHILD")
	if mode == "" {
		t.Skip("runs only as a benchmark's client process")
	}
	tlsConf, err := protocol.ClientTLSConfig(protocol.ClientTLSOptions{CAFile: os.Getenv("HUBFLEET_CHILD_CA")})
	if err != nil {
		t.Fatal(err)
	}
	if full, _ := strconv.ParseBool(os.Getenv("HUBFLEET_CHILD_FULLTLS")); full {
		tlsConf.ClientSessionCache = nil
	}
	ticket, _ := hex.DecodeString(os.Getenv("HUBFLEET_CHILD_TICKET"))
	req := protocol.LoginRequest{Hub: os.Getenv("HUBFLEET_CHILD_HUB"), User: os.Getenv("HUBFLEET_CHILD_USER"),
		Password: os.Getenv("HUBFLEET_CHILD_PASSWORD"), Ticket: ticket, Kind: protocol.KindClient}
	n, _ := strconv.Atoi(os.Getenv("HUBFLEET_CHILD_N"))
	par, _ := strconv.Atoi(os.Getenv("HUBFLEET_CHILD_PARALLEL"))
	addr := os.Getenv("HUBFLEET_CHILD_ADDR")
	dial := func() *protocol.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, _, err := protocol.Dial(ctx, addr, tlsConf, req)
		if err != nil {
			fmt.Println("login failed:", err)
			os.Exit(1)
		}
		return c
	}
	if mode == "pairs" {
		npairs, _ := strconv.Atoi(os.Getenv("HUBFLEET_CHILD_PAIRS"))
		size, _ := strconv.Atoi(os.Getenv("HUBFLEET_CHILD_SIZE"))
		childPairs(t, dial, npairs, size, n)
		return
	}
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	var mu sync.Mutex
	var held []*protocol.Conn
	for range par {
		wg.Go(func() {
			for range next {
				c := dial()
				if mode == "idle" {
					go func() { _ = c.RunKeepalive(context.Background()) }()
					go func() {
						for {
							if _, err := c.ReadFrames(func([]byte) {}); err != nil {
								return
							}
						}
					}()
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				} else {
					c.Close()
				}
			}
		})
	}
	wg.Wait()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range held {
		c.Close()
	}
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childPairs runs BenchmarkEndToEnd's traffic for BenchmarkEndToEndMemberCPU.
func childPairs(t *testing.T, dial func() *protocol.Conn, npairs, size, per int) {
	// Every session is in before the first hello, so each sender sees them all.
	conns := make([]*protocol.Conn, 2*npairs)
	for i := range conns {
		conns[i] = dial()
		go func() { _ = conns[i].RunKeepalive(context.Background()) }()
	}
	ps := make([]*pair, npairs)
	for i := range ps {
		p, err := newPair(conns[2*i], conns[2*i+1], i, size)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	// Every hello floods to every sender; once each sender has all of them, the
	// hub has learnt every receiver and the benchmark frames go unicast.
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			for seen := 0; seen < npairs; {
				k, err := p.tx.ReadFrames(func([]byte) {})
				if err != nil {
					fmt.Println("sender:", err)
					os.Exit(1)
				}
				seen += k
			}
			// Keep draining: a sender's port must not back up.
			go func() {
				for {
					if _, err := p.tx.ReadFrames(func([]byte) {}); err != nil {
						return
					}
				}
			}()
		})
	}
	wg.Wait()
	if err := runPairs(ps, per); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
