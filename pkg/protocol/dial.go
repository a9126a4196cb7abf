package protocol

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// Dial connects to a member at addr (host:port), completes the TLS handshake and
// logs in. On OK it returns the session; on a refusal it returns the result and its
// *LoginError (for Redirect, result.RedirectAddr says where to go). If
// tlsConf.ServerName is empty the host part of addr is used.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, req LoginRequest) (*Conn, *LoginResult, error) {
	if tlsConf == nil {
		return nil, nil, fmt.Errorf("dialing %s: no TLS configuration: build one with ClientTLSConfig", addr)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	TuneTCP(raw)
	if tlsConf.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			tlsConf = tlsConf.Clone()
			tlsConf.ServerName = host
		}
	}
	tc := tls.Client(raw, tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	res, err := Login(ctx, tc, req)
	if err != nil {
		tc.Close()
		return nil, res, err
	}
	return NewConn(tc, res.ConnConfig()), res, nil
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
