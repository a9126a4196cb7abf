// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PingStream is a continuous `ping -D` from a client's namespace: every reply
// is timestamped by ping itself when it arrives, so the moment traffic resumes
// after a failure is measured to within the ping interval, without the cost of
// starting a process per probe.
type PingStream struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	// replies are the arrival times of the replies so far, in order.
	replies []time.Time
	// dups counts duplicate replies (ping's "(DUP!)"): one echo request
	// answered twice, i.e. frames delivered by two copies of a hub.
	dups  int
	done  bool
	lines []string
}

var replyLine = regexp.MustCompile(`^\[(\d+)\.(\d+)\] \d+ bytes from `)

// StartPingStream starts pinging dst (an overlay address) every interval
// (≥ 10 ms; ping's own minimum for root) until Stop or the test's end.
func (c *Client) StartPingStream(t testing.TB, dst string, interval time.Duration) *PingStream {
	t.Helper()
	if !overlayCIDR.Contains(net.ParseIP(dst)) {
		t.Fatalf("refusing to ping %s: outside the test-only overlay %s", dst, OverlayNet)
	}
	p := &PingStream{}
	p.cond = sync.NewCond(&p.mu)
	p.cmd = exec.Command("ip", "netns", "exec", c.NS, "ping", "-D", "-n",
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), dst)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting ping in %s: %v", c.NS, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			if strings.Contains(line, "(DUP!)") {
				p.dups++
			}
			if m := replyLine.FindStringSubmatch(line); m != nil {
				sec, _ := strconv.ParseInt(m[1], 10, 64)
				frac := m[2]
				for len(frac) < 9 {
					frac += "0"
				}
				ns, _ := strconv.ParseInt(frac[:9], 10, 64)
				p.replies = append(p.replies, time.Unix(sec, ns))
			} else if len(p.lines) < 50 {
				p.lines = append(p.lines, line)
			}
			p.mu.Unlock()
			p.cond.Broadcast()
		}
		p.cmd.Wait()
		p.mu.Lock()
		p.done = true
		p.mu.Unlock()
		p.cond.Broadcast()
	}()
	t.Cleanup(p.Stop)
	return p
}

// FirstReplyAfter waits until a reply arrives after since and returns its
// arrival time, or an error after within.
func (p *PingStream) FirstReplyAfter(since time.Time, within time.Duration) (time.Time, error) {
	return p.FirstReplyAfterGap(since, 0, within)
}

// FirstReplyAfterGap waits for the first reply after since that ends an
// outage: one that came more than gap after the reply before it (or after
// since, if there was none). Replies still in flight when a failure is caused
// arrive just after it, before the outage; they do not count as resumption.
// An outage shorter than gap (replies flowing for a second past since with no
// longer break) resumes with the reply that ended the longest break.
func (p *PingStream) FirstReplyAfterGap(since time.Time, gap, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	// The condition variable is woken by every line; a timer wakes it at the
	// deadline.
	timer := time.AfterFunc(within, p.cond.Broadcast)
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		prev := since
		var widest time.Time // the reply that ended the longest gap so far
		widestGap := time.Duration(-1)
		for _, r := range p.replies {
			if !r.After(since) {
				continue
			}
			if r.Sub(prev) > gap {
				return r, nil
			}
			if d := r.Sub(prev); d > widestGap {
				widest, widestGap = r, d
			}
			prev = r
		}
		// A failover quicker than gap leaves no outage longer than it: once
		// replies have kept coming for a second past since, the longest
		// break is the outage, and the reply that ended it the resumption.
		if gap > 0 && !widest.IsZero() && prev.Sub(since) > time.Second {
			return widest, nil
		}
		if p.done {
			return time.Time{}, fmt.Errorf("ping exited: %s", strings.Join(p.lines, "; "))
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no reply ending an outage of more than %v within %v of %s", gap, within, since.Format("15:04:05.000"))
		}
		p.cond.Wait()
	}
}

// Replies is how many replies arrived so far.
func (p *PingStream) Replies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.replies)
}

// Dups is how many duplicate replies arrived so far.
func (p *PingStream) Dups() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dups
}

// Stop ends the ping.
func (p *PingStream) Stop() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}
