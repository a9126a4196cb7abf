// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package client

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hubfleet/hubfleet/pkg/gso"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
	"github.com/hubfleet/hubfleet/pkg/tap"
)

// Backoff between failed attempts: the first retry after a lost session is
// immediate (with up to firstJitter of jitter, so a member's thousands of
// clients do not arrive in the same millisecond); each further failure doubles
// the delay from backoffBase up to backoffCap, drawn from [d/2, d].
const (
	firstJitter = 100 * time.Millisecond
	backoffBase = 250 * time.Millisecond
	backoffCap  = 10 * time.Second
	// healthySession: a session that lasted this long resets the backoff; a
	// shorter one counts as a failed attempt, so a member that accepts and drops
	// sessions at once is not hammered.
	healthySession = 10 * time.Second
	// failoverWindow: for this long after a session is lost, failed attempts
	// are retried every backoffBase/2..backoffBase instead of backing off
	// further. A failover (member dead → pod not Ready → hub reassigned →
	// new owner serving) takes 1–2 s; a client that had backed off to 1–2 s
	// by then would add up to as much again (measured end to end, test/e2e).
	failoverWindow = 5 * time.Second
	// unknownHubGrace: UnknownHub within this long of losing a session to
	// the same hub is retried, not final: while a hub moves, the member
	// taking it may answer before it serves it. Later it is final (exit 4):
	// the hub was deleted.
	unknownHubGrace = 30 * time.Second
)

// Run connects the TAP device to the hub and keeps it connected until ctx ends
// (then it returns nil) or a failure that retrying cannot fix (then an *Error).
func Run(ctx context.Context, opts Options) error {
	if err := opts.check(); err != nil {
		if opts.Device != nil {
			opts.Device.Close()
		}
		return &Error{Reason: ReasonConfig, Err: err}
	}
	tlsConf, err := clientTLS(opts)
	if err != nil {
		if opts.Device != nil {
			opts.Device.Close()
		}
		return err
	}
	dev := opts.Device
	if dev == nil {
		if dev, err = openTAP(opts); err != nil {
			return err
		}
	}
	defer dev.Close()
	// One tls.Config for the whole run: its session cache (ClientTLSConfig) is
	// what lets every reconnect resume the TLS session, on any member.
	c := newClient(opts, dev, tlsConf)
	defer c.reader.Close()
	if opts.DHCP {
		return c.runDHCP(ctx) // dhcp.go
	}
	return c.run(ctx)
}

func clientTLS(opts Options) (*tls.Config, error) {
	conf, err := protocol.ClientTLSConfig(protocol.ClientTLSOptions{
		CAFile: opts.CAFile, Fingerprint: opts.CAFingerprint, ServerName: opts.ServerName,
	})
	if err != nil {
		return nil, &Error{Reason: ReasonTLS, Err: err}
	}
	if verify := conf.VerifyConnection; verify != nil {
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verify(cs); err != nil {
				return &tlsVerifyError{err}
			}
			return nil
		}
	}
	return conf, nil
}

// openTAP creates and configures the TAP device; on any failure it is removed.
func openTAP(opts Options) (tap.Device, error) {
	// With offloads the kernel hands the client 64 KiB super-frames, which the
	// session carries whole when the member accepts CapGSO and splits in
	// software when it does not (protocol.Conn.WriteFramesGSO).
	dev, err := tap.Open(opts.TAPName, tap.Options{Queues: tap.DefaultQueues(), Offload: !opts.NoOffload})
	if err != nil {
		return nil, &Error{Reason: ReasonTAP, Err: err}
	}
	err = configureTAP(dev, opts)
	if err != nil {
		dev.Close()
		return nil, &Error{Reason: ReasonTAP, Err: err}
	}
	return dev, nil
}

func configureTAP(dev tap.Device, opts Options) error {
	if opts.MTU > 0 {
		if err := tap.SetMTU(dev.Name(), opts.MTU); err != nil {
			return err
		}
	}
	if err := tap.SetUp(dev.Name()); err != nil {
		return err
	}
	if opts.Address != "" {
		if err := tap.AddAddress(dev.Name(), opts.Address); err != nil {
			return err
		}
	}
	if opts.Kind == sessionkind.Bridge {
		if _, err := tap.AddToBridge(dev.Name(), opts.Bridge); err != nil {
			return err
		}
	}
	return nil
}

type client struct {
	opts    Options
	tls     *tls.Config
	dev     tap.Device
	reader  *tap.Reader
	log     *slog.Logger
	status  io.Writer
	maxWant int // the largest frame the TAP produces, asked of the member

	ticket       []byte
	ticketExpiry time.Time

	udp *udpChannel // the session's UDP channel, when the member granted one (udp.go)

	toTAP       func([]byte, gso.Meta) // c.writeTAP, bound once so the hot path does not allocate
	tapWriteErr uint64
	tapBuf      []byte   // a received frame behind its virtio_net_hdr, for dev.Write
	tapBufs     [][]byte // tapBuf as Write's batch of one
}

func newClient(opts Options, dev tap.Device, tlsConf *tls.Config) *client {
	mtu := dev.MTU()
	if mtu <= 0 {
		mtu = 1500
	}
	c := &client{
		opts:    opts,
		tls:     tlsConf,
		dev:     dev,
		log:     opts.Logger,
		status:  opts.Status,
		maxWant: max(protocol.DefaultMaxFrame, mtu+tap.FrameOverhead),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.status == nil {
		c.status = io.Discard
	}
	c.maxWant = min(c.maxWant, protocol.MaxFrameLimit)
	c.reader = tap.NewReader(dev, c.maxWant)
	c.toTAP = c.writeTAP
	room := c.maxWant
	if c.offersGSO() {
		room = protocol.MaxSuperFrame
	}
	c.tapBuf = make([]byte, tap.Headroom+room)
	c.tapBufs = make([][]byte, 1)
	return c
}

// offersGSO: the TAP hands out super-frames, so the session asks the member
// to carry them whole (and to send super-frames back).
func (c *client) offersGSO() bool { return c.dev.Offload().Any() }

func (c *client) say(format string, args ...any) {
	fmt.Fprintf(c.status, format+"\n", args...)
}

// run is the reconnect loop.
func (c *client) run(ctx context.Context) error {
	// failures counts failed attempts since the last session; shortRun counts
	// consecutive sessions that ended before healthySession.
	failures, shortRun := 0, 0
	var lost time.Time // when the last session ended; zero before the first
	addr := c.opts.Server
	for {
		if ctx.Err() != nil {
			return nil
		}
		conn, res, err := c.dial(ctx, addr)
		addr = c.opts.Server // a redirect holds for one attempt
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if le, ok := errors.AsType[*protocol.LoginError](err); ok && le.Code == protocol.Redirect && le.RedirectAddr != "" {
				c.say("redirected to %s", le.RedirectAddr)
				addr = le.RedirectAddr
				continue
			}
			if perm := c.permanent(err, lost); perm != nil {
				return perm // the caller reports it; a status line would repeat it
			}
			var wait time.Duration
			if !lost.IsZero() && time.Since(lost) < failoverWindow && shortRun <= 1 {
				// Riding out a failover: keep probing at the base rate, and
				// resume the exponential backoff from there once the window
				// is over. A run of short sessions (shortRun > 1) backs off.
				wait = backoff(min(failures, 1))
				failures = min(failures, 1)
			} else {
				wait = backoff(failures)
			}
			failures++
			c.say("reconnecting in %v: %s", wait.Round(time.Millisecond), describe(err))
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		start := time.Now()
		sid := hex.EncodeToString(res.SessionID[:4])
		c.say("connected to hub %s via %s (session %s, tap %s)", c.opts.Hub, conn.NetConn().RemoteAddr(), sid, c.dev.Name())
		if res.MaxFrame < c.maxWant {
			c.log.Warn("the member accepts smaller frames than the TAP can produce; larger ones are dropped", "memberMaxFrame", res.MaxFrame, "tapMaxFrame", c.maxWant, "fix", fmt.Sprintf("set the TAP MTU to %d or less", res.MaxFrame-tap.FrameOverhead))
		}
		c.udp = c.startUDP(ctx, conn, res)
		err = c.session(ctx, conn)
		c.udp.stop()
		c.udp = nil
		if ctx.Err() != nil {
			c.say("disconnected from hub %s", c.opts.Hub)
			return nil
		}
		if te, ok := errors.AsType[*Error](err); ok {
			return te
		}
		if c.opts.NoRetry {
			return &Error{Reason: ReasonRefused, Err: fmt.Errorf("connection to hub %s lost: %w", c.opts.Hub, err)}
		}
		lost = time.Now()
		st := conn.Stats()
		c.log.Info("session ended", "session", sid, "duration", time.Since(start), "err", err,
			"rxFrames", st.RxFrames, "txFrames", st.TxFrames, "tapWriteErrors", c.tapWriteErr)
		if time.Since(start) >= healthySession || errors.Is(err, protocol.ErrShutdown) {
			shortRun = 0
		} else {
			shortRun++
		}
		// The first loss is retried at once; only a run of short sessions backs off.
		failures = max(0, shortRun-1)
		wait := backoff(failures)
		failures++
		c.say("connection lost (%s); reconnecting in %v", describe(err), wait.Round(time.Millisecond))
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// dial connects and logs in, with the ticket of the last session while it is
// valid, else with the password. A refused ticket falls back to the password at
// once: the ticket key may have rotated, or the member restarted with a new one.
func (c *client) dial(ctx context.Context, addr string) (*protocol.Conn, *protocol.LoginResult, error) {
	req := protocol.LoginRequest{
		Hub: c.opts.Hub, User: c.opts.User, Kind: uint8(c.opts.Kind),
		ClientName: c.opts.ClientName, MaxFrame: c.maxWant,
	}
	if c.offersGSO() {
		req.Capabilities = protocol.CapGSO
	}
	req.Capabilities |= c.udpCaps()
	if !c.opts.NoHandoff {
		req.Capabilities |= protocol.CapHandoff
	}
	withTicket := len(c.ticket) > 0 && time.Now().Before(c.ticketExpiry)
	if withTicket {
		req.Ticket = c.ticket
	} else {
		req.Password = c.opts.Password
	}
	conn, res, err := protocol.Dial(ctx, addr, c.tls, req)
	if withTicket {
		if le, ok := errors.AsType[*protocol.LoginError](err); ok && le.Code == protocol.BadCredentials {
			c.log.Info("resumption ticket refused; logging in with the password", "reason", le.Message)
			c.ticket = nil
			req.Ticket, req.Password = nil, c.opts.Password
			conn, res, err = protocol.Dial(ctx, addr, c.tls, req)
		}
	}
	if err != nil {
		return nil, res, err
	}
	if len(res.Ticket) > 0 {
		c.ticket, c.ticketExpiry = res.Ticket, res.TicketExpiry
	}
	return conn, res, nil
}

// permanent is the *Error for a failure retrying cannot fix, or nil. lost is
// when the last session ended (zero if there was none).
func (c *client) permanent(err error, lost time.Time) *Error {
	if _, ok := errors.AsType[*tlsVerifyError](err); ok {
		return &Error{Reason: ReasonTLS, Err: fmt.Errorf("the server at %s is not the cluster you trust: %w; check --ca-file / --ca-fingerprint against the cluster's CA", c.opts.Server, err)}
	}
	if le, ok := errors.AsType[*protocol.LoginError](err); ok {
		switch le.Code {
		case protocol.BadCredentials:
			return &Error{Reason: ReasonBadCredentials, Err: fmt.Errorf("user %q on hub %s: %w; check the user name and password", c.opts.User, c.opts.Hub, err)}
		case protocol.UnknownHub:
			if !c.opts.NoRetry && !lost.IsZero() && time.Since(lost) < unknownHubGrace {
				return nil // the hub existed a moment ago: probably moving
			}
			return &Error{Reason: ReasonUnknownHub, Err: fmt.Errorf("hub %q: %w; check --hub against the cluster's VirtualHubs", c.opts.Hub, err)}
		case protocol.VersionUnsupported, protocol.BadRequest:
			return &Error{Reason: ReasonRefused, Err: err}
		case protocol.LicenseExhausted:
			if c.opts.NoRetry {
				return &Error{Reason: ReasonLicense, Err: err}
			}
		}
	}
	if c.opts.NoRetry {
		return &Error{Reason: ReasonRefused, Err: err}
	}
	return nil
}

// describe is the short cause shown on the status line.
func describe(err error) string {
	if le, ok := errors.AsType[*protocol.LoginError](err); ok {
		return le.Reason()
	}
	if se, ok := errors.AsType[*protocol.ShutdownError](err); ok {
		if se.Reason == "" {
			return "member shutting down"
		}
		return "member shutting down: " + se.Reason
	}
	return err.Error()
}

func backoff(failures int) time.Duration {
	if failures == 0 {
		return rand.N(firstJitter)
	}
	d := backoffCap
	if failures <= 6 {
		d = min(backoffCap, backoffBase<<(failures-1))
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
