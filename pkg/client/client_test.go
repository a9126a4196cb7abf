// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hubfleet/hubfleet/pkg/protocol"

	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCarriesFramesBothWaysAndSaysWhereItIsConnected(t *testing.T) {
	m := newTestMember(t, func(int, *protocol.LoginRequest) *protocol.LoginResult { return ok("t1") })
	dev := newPipeTAP()
	var status testutil.SyncBuffer
	runClient(t, m, dev, &status, nil)
	sess := m.nextSession()

	dev.in <- []byte("frame from the host")
	if got := memberFrame(t, sess); string(got) != "frame from the host" {
		t.Fatalf("member got %q", got)
	}
	if err := sess.WriteFrames([][]byte{[]byte("frame from the hub")}); err != nil {
		t.Fatal(err)
	}
	if got := recvFrame(t, dev.out, "frame on the TAP"); string(got) != "frame from the hub" {
		t.Fatalf("TAP got %q", got)
	}
	want := regexp.MustCompile(`connected to hub blue via 127\.0\.0\.1:\d+ \(session 1a2b3c4d, tap pipe0\)`)
	waitUntil(t, "status line", func() bool { return want.MatchString(status.String()) })

	l := m.loginsSoFar()[0]
	if l.Hub != "blue" || l.User != "alice" || l.Password != "secret" || l.Kind != protocol.KindClient || l.MaxFrame < 1500+14 {
		t.Fatalf("first login %v (max frame %d), want a password login of alice to blue, kind client, max frame ≥ 1514", l, l.MaxFrame)
	}
}

func TestBurstFromTheTAPLeavesInOneBatch(t *testing.T) {
	m := newTestMember(t, func(int, *protocol.LoginRequest) *protocol.LoginResult { return ok("") })
	dev := newPipeTAP()
	runClient(t, m, dev, nil, nil)
	sess := m.nextSession()
	// Frames waiting in the TAP are read together and leave in one message
	// per read, so the member receives them in fewer messages than frames.
	var frames [][]byte
	for i := range 100 {
		frames = append(frames, []byte{byte(i)})
	}
	for _, f := range frames {
		dev.in <- f
	}
	var got [][]byte
	batches := 0
	for len(got) < 100 {
		if _, err := sess.ReadFrames(func(f []byte) { got = append(got, append([]byte(nil), f...)) }); err != nil {
			t.Fatal(err)
		}
		batches++
	}
	for i := range got {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d is %v, want %v: order must be kept", i, got[i], frames[i])
		}
	}
	t.Logf("100 frames arrived in %d batches", batches)
	if batches == 100 {
		t.Fatal("every frame came in its own batch: a TAP read's frames must leave together")
	}
}

func TestShutdownReconnectsAtOnceWithTheTicket(t *testing.T) {
	m := newTestMember(t, func(n int, _ *protocol.LoginRequest) *protocol.LoginResult {
		return ok(fmt.Sprintf("ticket-%d", n))
	})
	dev := newPipeTAP()
	var status testutil.SyncBuffer
	runClient(t, m, dev, &status, nil)
	sess := m.nextSession()
	if err := sess.WriteShutdown("member draining"); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	sess2 := m.nextSession()

	logins := m.loginsSoFar()
	if len(logins) != 2 || string(logins[1].Ticket) != "ticket-0" || logins[1].Password != "" {
		t.Fatalf("logins %v, want the second to present the first session's ticket and no password", logins)
	}
	if !strings.Contains(status.String(), "connection lost (member shutting down: member draining); reconnecting in") {
		t.Fatalf("status %q does not say why it reconnects", status.String())
	}
	// The same TAP carries frames over the new session.
	dev.in <- []byte("after reconnect")
	if got := memberFrame(t, sess2); string(got) != "after reconnect" {
		t.Fatalf("member got %q after the reconnect", got)
	}
}

func TestRefusedTicketFallsBackToThePassword(t *testing.T) {
	m := newTestMember(t, func(n int, req *protocol.LoginRequest) *protocol.LoginResult {
		if len(req.Ticket) > 0 {
			return refuse(protocol.BadCredentials, "ticket signed by an unknown key")
		}
		return ok("ticket")
	})
	runClient(t, m, newPipeTAP(), nil, nil)
	m.nextSession().Close() // lost without a Shutdown: an EOF
	m.nextSession()
	var creds []string
	for _, l := range m.loginsSoFar() {
		if len(l.Ticket) > 0 {
			creds = append(creds, "ticket")
		} else {
			creds = append(creds, l.Password)
		}
	}
	if strings.Join(creds, ",") != "secret,ticket,secret" {
		t.Fatalf("credentials presented %v, want password, refused ticket, password", creds)
	}
}

func TestDeadPeerIsDetectedAndReplaced(t *testing.T) {
	m := newTestMember(t, func(n int, _ *protocol.LoginRequest) *protocol.LoginResult {
		r := ok("")
		r.KeepaliveInterval, r.DeadPeerTimeout = 50*time.Millisecond, 300*time.Millisecond
		return r
	})
	// The first session never hears from the member, as when its node vanished
	// without closing anything: the client must give up on it after the
	// dead-peer timeout and log in again.
	m.silentFirst = true
	var status testutil.SyncBuffer
	runClient(t, m, newPipeTAP(), &status, nil)
	m.nextSession()
	m.nextSession()
	if !strings.Contains(status.String(), "connection lost (peer dead: nothing received for 300ms)") {
		t.Fatalf("status %q does not report the lost connection", status.String())
	}
}

func TestPermanentFailuresStopWithTheirReason(t *testing.T) {
	cases := []struct {
		name   string
		code   protocol.Code
		tweak  func(*Options)
		reason Reason
		says   string
	}{
		{"bad credentials", protocol.BadCredentials, nil, ReasonBadCredentials, "bad credentials"},
		{"unknown hub", protocol.UnknownHub, nil, ReasonUnknownHub, "unknown hub"},
		{"license exhausted with no-retry", protocol.LicenseExhausted, func(o *Options) { o.NoRetry = true }, ReasonLicense, "license exhausted"},
		{"wrong CA", protocol.OK, func(o *Options) {
			o.CAFile = ""
			o.CAFingerprint = strings.Repeat("ab", 32)
		}, ReasonTLS, "pinned fingerprint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMember(t, func(int, *protocol.LoginRequest) *protocol.LoginResult {
				if tc.code == protocol.OK {
					return ok("")
				}
				return refuse(tc.code, "as the test says")
			})
			done := runClient(t, m, newPipeTAP(), nil, tc.tweak)
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run kept retrying a permanent failure")
			}
			ce, isErr := errors.AsType[*Error](err)
			if !isErr || ce.Reason != tc.reason || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Run = %v, want an *Error with reason %d mentioning %q", err, tc.reason, tc.says)
			}
			if n := len(m.loginsSoFar()); n > 1 {
				t.Fatalf("%d logins: a permanent failure must not be retried", n)
			}
		})
	}
}

func TestBusyClusterIsRetriedWithBackoffUntilItAdmits(t *testing.T) {
	codes := []protocol.Code{protocol.LicenseExhausted, protocol.HubFull, protocol.ShuttingDown}
	m := newTestMember(t, func(n int, _ *protocol.LoginRequest) *protocol.LoginResult {
		if n < len(codes) {
			return refuse(codes[n], "try later")
		}
		return ok("")
	})
	var status testutil.SyncBuffer
	runClient(t, m, newPipeTAP(), &status, nil)
	m.nextSession()
	for _, want := range []string{"license exhausted: try later", "hub full: try later", "member shutting down: try later"} {
		if !regexp.MustCompile(`reconnecting in \d+(\.\d+)?m?s: ` + want).MatchString(status.String()) {
			t.Errorf("status %q has no retry line for %q", status.String(), want)
		}
	}
}

func TestCancelEndsTheSessionWithACloseAndReturnsNil(t *testing.T) {
	m := newTestMember(t, func(int, *protocol.LoginRequest) *protocol.LoginResult { return ok("") })
	dev := newPipeTAP()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Server: m.addr(), Hub: "blue", User: "alice", Password: "secret", Kind: sessionkind.Client, CAFile: m.caFile, Device: dev})
	}()
	sess := m.nextSession()
	// A frame through the TAP proves the client is in its session, past the login.
	if err := sess.WriteFrames([][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	recvFrame(t, dev.out, "frame on the TAP")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil (a clean stop)", err)
	}
	if _, err := sess.ReadFrames(func([]byte) {}); !errors.Is(err, protocol.ErrPeerClosed) {
		t.Fatalf("member saw %v, want the client's Close", err)
	}
	select {
	case <-dev.closed:
	default:
		t.Fatal("the TAP device was left open")
	}
}

func TestBackoffGrowsWithJitterToTheCap(t *testing.T) {
	for range 100 {
		if d := backoff(0); d >= firstJitter {
			t.Fatalf("first retry after %v, want under %v", d, firstJitter)
		}
		if d := backoff(1); d < backoffBase/2 || d > backoffBase {
			t.Fatalf("second retry after %v, want %v..%v", d, backoffBase/2, backoffBase)
		}
		if d := backoff(50); d < backoffCap/2 || d > backoffCap {
			t.Fatalf("retry after %v, want within the %v cap", d, backoffCap)
		}
	}
}

func TestOptionsAreCheckedBeforeAnythingIsOpened(t *testing.T) {
	err := Run(context.Background(), Options{Hub: "blue", Kind: sessionkind.Client, Device: newPipeTAP()})
	ce, isErr := errors.AsType[*Error](err)
	if !isErr || ce.Reason != ReasonConfig || !strings.Contains(err.Error(), "--server") || !strings.Contains(err.Error(), "--user") {
		t.Fatalf("Run with missing options = %v, want a config error naming --server and --user", err)
	}
}

func TestUnknownHubRightAfterASessionIsRetried(t *testing.T) {
	// While a hub moves, the member taking it may answer UnknownHub for a
	// moment; a client that was just in the hub must not give up on it.
	m := newTestMember(t, func(n int, _ *protocol.LoginRequest) *protocol.LoginResult {
		if n == 1 {
			return refuse(protocol.UnknownHub, "hub not here yet")
		}
		return ok("")
	})
	var status testutil.SyncBuffer
	runClient(t, m, newPipeTAP(), &status, nil)
	m.nextSession().Close()
	m.nextSession()
	if !regexp.MustCompile(`reconnecting in \d+(\.\d+)?m?s: unknown hub: hub not here yet`).MatchString(status.String()) {
		t.Fatalf("status %q has no retry line for the unknown hub", status.String())
	}
}

func TestFailoverIsProbedAtTheBaseRate(t *testing.T) {
	// After a lost session the owner is unreachable for a while (the hub is
	// being moved); retries stay at the base rate instead of doubling.
	const refusals = 8
	m := newTestMember(t, func(n int, _ *protocol.LoginRequest) *protocol.LoginResult {
		if n >= 1 && n <= refusals {
			return refuse(protocol.Internal, "owner unreachable")
		}
		return ok("")
	})
	var status testutil.SyncBuffer
	runClient(t, m, newPipeTAP(), &status, nil)
	m.nextSession().Close()
	m.nextSession()
	waits := regexp.MustCompile(`reconnecting in (\S+): internal error`).FindAllStringSubmatch(status.String(), -1)
	if len(waits) != refusals {
		t.Fatalf("%d retry lines, want %d:\n%s", len(waits), refusals, status.String())
	}
	for _, w := range waits {
		if d, err := time.ParseDuration(w[1]); err != nil || d > backoffBase {
			t.Fatalf("retry after %s during a failover, want at most %v:\n%s", w[1], backoffBase, status.String())
		}
	}
}
