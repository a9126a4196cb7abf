// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"

	"github.com/hubfleet/hubfleet/pkg/datagram"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// UDP for relayed sessions (docs/member-cluster.md, "The UDP data channel"):
// the client's TLS ends at the entry member, which alone can export the
// datagram keys, but the session and its hub port are here, at the owner.
// The entry sends the first epochs' keys with the relayed login
// (LoginRequest.RelayUDPKeys); this member runs the session's UDP channel as
// for any other, with a datagram.KeyTable as its exporter, which asks the
// entry for later epochs' keys through the UDPForwarder, when it implements
// UDPKeyFetcher. The datagram session ID carries this member's tag, so the
// client's datagrams reach this member from whichever member kube-proxy
// sends them to (the entry, often), and its replies leave through that one.

// UDPKeyFetcher is implemented by a UDPForwarder that can ask a relayed
// session's entry member for more of its keys.
type UDPKeyFetcher interface {
	// RelayUDPKeys returns the keys of epochs [from, from+n) of the relayed
	// session whose datagram session ID is id, from entry
	// (datagram.EpochKeys' layout).
	RelayUDPKeys(ctx context.Context, entry string, id datagram.SessionID, from uint32, n int) ([]byte, error)
}

// relayKeys are a relayed session's keys at the owner.
type relayKeys struct {
	table *datagram.KeyTable
	id    datagram.SessionID // set once the session ID is chosen, before any fetch
}

// relayUDPKeys is the key table of a relayed login that carries keys, or nil.
func (s *Server) relayUDPKeys(req *protocol.LoginRequest) *relayKeys {
	if len(req.RelayUDPKeys) == 0 || req.RelayEntry == "" {
		return nil
	}
	rk := &relayKeys{}
	var fetch func(uint32) ([]byte, error)
	if f, ok := s.udpFwd.(UDPKeyFetcher); ok {
		entry := req.RelayEntry
		fetch = func(from uint32) ([]byte, error) {
			keys, err := f.RelayUDPKeys(context.Background(), entry, rk.id, from, datagram.RelayKeyEpochs)
			if err != nil {
				s.log.Warn("a relayed session's next UDP keys could not be fetched from its entry member; retrying at the next rekey", "entry", entry, "err", err)
			}
			return keys, err
		}
	}
	t, err := datagram.NewKeyTable(req.RelayUDPKeys, fetch)
	clear(req.RelayUDPKeys)
	if err != nil {
		s.log.Warn("a relayed login's UDP keys are unusable; the session stays on TLS", "entry", req.RelayEntry, "err", err)
		return nil
	}
	rk.table = t
	return rk
}
