// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// ALPN values on the mesh port. One listener serves both: the fabric link
// (a long-lived multiplexed connection per member pair) and relayed sessions
// (one connection per session, speaking the ordinary hubfleet/1 protocol from
// the Login on). Serve dispatches on the negotiated value.
const (
	ALPNLink  = "hubfleet-mesh/1"
	ALPNRelay = "hubfleet-relay/1"
	ALPNCall  = "hubfleet-call/1" // one request and its answer (call.go)
)

// TLSConfig builds the one configuration a member uses on both ends of the
// mesh: TLS 1.3 only, the shared peer certificate presented as server and as
// client, the cluster CA as the only root and client CA, and serverName (the
// peer certificate's name, "<cluster>-member") verified on every dial. The
// peer certificate is shared by all members, so it proves "a member of this
// cluster", never which one: the member name comes from the Hello message.
//
// pkg/protocol's ClientTLSConfig is not reused: it accepts any name under a
// pinned CA (right for clients behind a Service address) and requires ALPN
// hubfleet/1, where the mesh wants strict name verification and its own ALPN.
func TLSConfig(cert tls.Certificate, clusterCA *x509.CertPool, serverName string) (*tls.Config, error) {
	if clusterCA == nil {
		return nil, fmt.Errorf("mesh TLS: no cluster CA: mesh links trust only the cluster CA, never the system roots")
	}
	if serverName == "" {
		return nil, fmt.Errorf("mesh TLS: no server name: give the peer certificate's name (<cluster>-member)")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      clusterCA,
		ClientCAs:    clusterCA,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   serverName,
		NextProtos:   []string{ALPNLink, ALPNRelay, ALPNCall},
		// Relays open a connection per session; resuming saves the peer a
		// certificate signature and verification each time.
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}, nil
}

// clientConfig is conf offering only proto, so the acceptor knows what the
// connection is for.
func clientConfig(conf *tls.Config, proto string) *tls.Config {
	c := conf.Clone()
	c.NextProtos = []string{proto}
	return c
}
