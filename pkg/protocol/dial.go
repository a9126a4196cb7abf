// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// HandshakeTimeout bounds the TCP connect and the TLS handshake of Dial
// together. A frozen member (SIGSTOP, a hung VM) still has its kernel accept
// connections into the listen backlog, so without a bound a reconnecting
// client waits on it until it wakes instead of trying the next one. The same
// silence that declares an established session's peer dead
// (DefaultDeadPeerTimeout) is enough here: a live member answers a ClientHello
// in milliseconds, and the login that follows, where a busy member may spend
// time hashing a password, keeps its own LoginTimeout.
const HandshakeTimeout = DefaultDeadPeerTimeout

// ErrNoAnswer is wrapped by Dial's error when the member accepted (or did not
// refuse) the connection but did not complete the TLS handshake within
// HandshakeTimeout: it is silent, not refusing, and a retry elsewhere may work.
var ErrNoAnswer = errors.New("member did not answer")

// handshakeAttempts is how many connections Dial opens, one every
// handshakeStagger while none has completed its handshake. Behind a Service
// (a NodePort, a load balancer) each connection may reach a different member,
// so a second one made while the first waits on a frozen member usually
// completes in milliseconds on a live one; the first handshake to complete
// wins and the others are closed. Against one member it costs a few idle
// connections at most.
//
// The stagger is 250 ms, as in Happy Eyeballs (RFC 8305): it was
// HandshakeTimeout/3 = 1 s, and a reconnect that kube-proxy sent to the
// frozen member (not yet marked not Ready) waited that second before trying
// another, which put frozen-member failover at 4.1 s in one CI run (p99
// target 4 s). On a long path whose handshake takes more than 250 ms the
// cost is an extra connection per login, closed when the first completes.
const (
	handshakeAttempts = 4
	handshakeStagger  = 250 * time.Millisecond
)

// Dial connects to a member at addr (host:port), completes the TLS handshake and
// logs in. On OK it returns the session; on a refusal it returns the result and its
// *LoginError (for Redirect, result.RedirectAddr says where to go). If
// tlsConf.ServerName is empty the host part of addr is used. Connecting and
// the handshake take at most HandshakeTimeout (less if ctx ends sooner),
// across up to handshakeAttempts staggered connections.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, req LoginRequest) (*Conn, *LoginResult, error) {
	if tlsConf == nil {
		return nil, nil, fmt.Errorf("dialing %s: no TLS configuration: build one with ClientTLSConfig", addr)
	}
	if tlsConf.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			tlsConf = tlsConf.Clone()
			tlsConf.ServerName = host
		}
	}
	tc, err := firstHandshake(ctx, addr, tlsConf)
	if err != nil {
		return nil, nil, err
	}
	res, err := Login(ctx, tc, req)
	if err != nil {
		tc.Close()
		return nil, res, err
	}
	if res.Capabilities&CapHandoff != 0 {
		// The entry member relayed the login and hands the connection
		// over to the hub's member (handoff.go).
		if tc, res, err = handOver(ctx, tc, tlsConf, req, res); err != nil {
			return nil, res, err
		}
	}
	return NewConn(tc, res.ConnConfig()), res, nil
}

// firstHandshake returns the first connection to addr whose TLS handshake
// completes. A new attempt starts every handshakeStagger (up to
// handshakeAttempts) while none has; an attempt that fails outright (refused, a certificate
// the client does not trust) ends Dial with its error once no other attempt
// is pending, as a single connection would.
func firstHandshake(ctx context.Context, addr string, conf *tls.Config) (*tls.Conn, error) {
	hctx, cancel := context.WithTimeoutCause(ctx, HandshakeTimeout, ErrNoAnswer)
	defer cancel()
	type result struct {
		tc  *tls.Conn
		err error
	}
	results := make(chan result, handshakeAttempts)
	launch := func() {
		go func() {
			tc, err := handshakeOnce(hctx, addr, conf)
			results <- result{tc, err}
		}()
	}
	stagger := time.NewTicker(handshakeStagger)
	defer stagger.Stop()
	launch()
	started, pending := 1, 1
	var firstErr error
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				cancel() // the others give up at once
				go func(n int) {
					for range n {
						if o := <-results; o.tc != nil {
							o.tc.Close()
						}
					}
				}(pending)
				return r.tc, nil
			}
			if firstErr == nil || errors.Is(firstErr, context.DeadlineExceeded) {
				firstErr = r.err
			}
		case <-stagger.C:
			if started < handshakeAttempts && hctx.Err() == nil {
				launch()
				started++
				pending++
			}
		}
	}
	return nil, noAnswer(hctx, ctx, firstErr)
}

func handshakeOnce(ctx context.Context, addr string, conf *tls.Config) (*tls.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	TuneTCP(raw)
	raw = WrapTCP(raw)
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// noAnswer names the cause when Dial's own bound, not the caller's context,
// cut the attempt short, so the log says the member was silent rather than
// a bare "context deadline exceeded".
func noAnswer(hctx, ctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(context.Cause(hctx), ErrNoAnswer) {
		return fmt.Errorf("%w within %v (%d connections): %w", ErrNoAnswer, HandshakeTimeout, handshakeAttempts, err)
	}
	return err
}

// TuneTCP sets a session's socket options: no Nagle delay (frames are batched
// already, and a lone frame should leave at once). The socket buffers are
// left to Linux's autotuning (tcp_rmem/tcp_wmem). They were fixed at 1 MiB,
// which turns autotuning off: that capped a 40 ms path at ~200 Mbit/s, and in
// about one run in four the receiver's window stuck at 80 KB after a loss
// (rwnd-limited at 10–28 Mbit/s, seen with ss in hack/bench-udp.sh). Measured
// in the same session without them: the TLS path over an emulated WAN at
// 1 % loss, 40 ms went from 61–99 to 129–232 Mbit/s, clean 20 ms from
// 392–446 to 365–601, and the loopback TAP path was unchanged (bench-tap
// 4.07 vs 4.21 Gbit/s, 3.10 vs 2.95 CPU s/GB). Errors are ignored: this is a
// performance hint, and a non-TCP conn (tests, pipes) has none.
func TuneTCP(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.SetNoDelay(true)
}
