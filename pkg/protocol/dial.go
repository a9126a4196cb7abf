package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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

// Dial connects to a member at addr (host:port), completes the TLS handshake and
// logs in. On OK it returns the session; on a refusal it returns the result and its
// *LoginError (for Redirect, result.RedirectAddr says where to go). If
// tlsConf.ServerName is empty the host part of addr is used. Connect and
// handshake together take at most HandshakeTimeout (less if ctx ends sooner).
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, req LoginRequest) (*Conn, *LoginResult, error) {
	if tlsConf == nil {
		return nil, nil, fmt.Errorf("dialing %s: no TLS configuration: build one with ClientTLSConfig", addr)
	}
	hctx, cancel := context.WithTimeoutCause(ctx, HandshakeTimeout, ErrNoAnswer)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", addr, noAnswer(hctx, ctx, err))
	}
	TuneTCP(raw)
	if tlsConf.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			tlsConf = tlsConf.Clone()
			tlsConf.ServerName = host
		}
	}
	tc := tls.Client(raw, tlsConf)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("TLS handshake with %s: %w", addr, noAnswer(hctx, ctx, err))
	}
	res, err := Login(ctx, tc, req)
	if err != nil {
		tc.Close()
		return nil, res, err
	}
	return NewConn(tc, res.ConnConfig()), res, nil
}

// noAnswer names the cause when Dial's own bound, not the caller's context,
// cut the attempt short, so the log says the member was silent rather than
// a bare "context deadline exceeded".
func noAnswer(hctx, ctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(context.Cause(hctx), ErrNoAnswer) {
		return fmt.Errorf("%w within %v: %w", ErrNoAnswer, HandshakeTimeout, err)
	}
	return err
}

// TuneTCP sets a session's socket options: no Nagle delay (frames are batched
// already, and a lone frame should leave at once) and 1 MiB socket buffers, which
// cover ~1 Gbit/s at 8 ms RTT. Fixed buffers turn Linux autotuning off for the
// socket; a long fat path wants a larger value. Errors are ignored: these are
// performance hints, and a non-TCP conn (tests, pipes) has none of them.
func TuneTCP(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.SetNoDelay(true)
	_ = tc.SetReadBuffer(1 << 20)
	_ = tc.SetWriteBuffer(1 << 20)
}
