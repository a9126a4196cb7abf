// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// UDP for relayed sessions, the entry's side (the owner's is
// pkg/member/udprelay.go). The entry holds the client's TLS session and so
// the only exporter of the session's datagram keys; the owner holds the
// session. The entry sends the first datagram.RelayKeyEpochs epochs' keys
// with the relayed login and answers the owner's "udpkeys" calls for later
// ones while the relay lasts. Datagrams then take the path every session's
// take in cluster mode: to whichever member the client's flow reaches,
// forwarded by the session ID's tag to the owner, answered back through
// that member. The entry never switches a frame, and the splice stays a
// byte copy.

// relayUDPCall asks an entry for keys of a session relayed through it.
type relayUDPCall struct {
	Op      string `json:"op"`   // "udpkeys"
	From    string `json:"from"` // the owner asking
	Session []byte `json:"session"`
	Epoch   uint32 `json:"epoch"`
	N       int    `json:"n"`
}

type relayUDPAnswer struct {
	Keys  []byte `json:"keys,omitempty"`
	Error string `json:"error,omitempty"`
}

// relayUDPKey names a relayed session's UDP channel at the entry: its owner
// and the datagram session ID the owner chose.
type relayUDPKey struct {
	owner string
	id    datagram.SessionID
}

// relayUDPKeys exports the first epochs' keys of a client that offered
// CapUDP, for its relayed login, and returns the exporter for later epochs;
// nil when the client did not offer it or c is not its TLS connection.
func relayUDPKeys(c net.Conn, req *protocol.LoginRequest) datagram.Exporter {
	tc, ok := c.(*tls.Conn)
	if !ok || req.Capabilities&protocol.CapUDP == 0 {
		return nil
	}
	exp := datagram.TLSExporter(tc.ConnectionState())
	keys, err := datagram.EpochKeys(exp, 0, datagram.RelayKeyEpochs)
	if err != nil {
		return nil
	}
	req.RelayUDPKeys = keys
	return exp
}

// addUDP makes the relayed session's later keys available to its owner
// until the returned function is called.
func (s *relaySet) addUDP(owner string, id datagram.SessionID, exp datagram.Exporter) (remove func()) {
	k := relayUDPKey{owner: owner, id: id}
	s.mu.Lock()
	if s.udp == nil {
		s.udp = map[relayUDPKey]datagram.Exporter{}
	}
	s.udp[k] = exp
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.udp, k)
		s.mu.Unlock()
	}
}

// udpKeys answers an owner's call for a relayed session's keys: only the
// owner the session was relayed to gets them, and only while it is.
func (s *relaySet) udpKeys(c relayUDPCall) relayUDPAnswer {
	var k relayUDPKey
	if len(c.Session) != len(k.id) || c.N < 1 || c.N > datagram.MaxRelayKeyEpochs {
		return relayUDPAnswer{Error: "malformed udpkeys call"}
	}
	k.owner = c.From
	copy(k.id[:], c.Session)
	s.mu.Lock()
	exp := s.udp[k]
	s.mu.Unlock()
	if exp == nil {
		return relayUDPAnswer{Error: fmt.Sprintf("no session with datagram ID %x is relayed from here to %s", c.Session, c.From)}
	}
	keys, err := datagram.EpochKeys(exp, c.Epoch, c.N)
	if err != nil {
		return relayUDPAnswer{Error: err.Error()}
	}
	return relayUDPAnswer{Keys: keys}
}

// answerCall answers mesh calls: relayed sessions' keys here, everything
// else (license loans) in loans.go.
func (m *Member) answerCall(req []byte) any {
	var c relayUDPCall
	if json.Unmarshal(req, &c) == nil && c.Op == "udpkeys" {
		return m.relays.udpKeys(c)
	}
	return m.loans.answer(req)
}

// RelayUDPKeys is member.UDPKeyFetcher over mesh calls.
func (f meshUDP) RelayUDPKeys(ctx context.Context, entry string, id datagram.SessionID, from uint32, n int) ([]byte, error) {
	var ans relayUDPAnswer
	if err := f.m.Call(ctx, entry, relayUDPCall{Op: "udpkeys", From: f.self, Session: id[:], Epoch: from, N: n}, &ans); err != nil {
		return nil, err
	}
	if len(ans.Keys) == 0 {
		if ans.Error == "" {
			ans.Error = "no keys in the answer (an entry member that predates relayed UDP keys)"
		}
		return nil, errors.New("entry " + entry + ": " + ans.Error)
	}
	return ans.Keys, nil
}
