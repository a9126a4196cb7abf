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
}

// startChild runs the child and waits for its "ready" line. stop ends it.
func startChild(b *testing.B, ce childEnv) (stop func()) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildClients$", "-test.v")
	cmd.Env = append(os.Environ(),
		"HUBFLEET_CHILD="+ce.mode, "HUBFLEET_CHILD_ADDR="+ce.addr, "HUBFLEET_CHILD_CA="+ce.caFile,
		"HUBFLEET_CHILD_HUB="+ce.req.Hub, "HUBFLEET_CHILD_USER="+ce.req.User,
		"HUBFLEET_CHILD_PASSWORD="+ce.req.Password, "HUBFLEET_CHILD_TICKET="+hex.EncodeToString(ce.req.Ticket),
		"HUBFLEET_CHILD_N="+strconv.Itoa(ce.n), "HUBFLEET_CHILD_PARALLEL="+strconv.Itoa(max(ce.parallel, 1)))
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
