// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Calls: one small JSON request and its answer between members, on a
// connection of its own (ALPNCall) so a call never waits behind a link's
// frames. Members use them to lend licenses (pkg/member/cluster/loans.go),
// a few per burst of logins; the TLS session cache makes each a resumed
// handshake.

// maxCall bounds a call's request and answer.
const maxCall = 64 << 10

// callTimeout bounds a call end to end when the caller's context does not.
const callTimeout = 2 * time.Second

// Call sends req to peer as JSON and decodes the answer into resp.
func (m *Mesh) Call(ctx context.Context, peer string, req, resp any) error {
	m.mu.Lock()
	addr, ok := m.peers[peer]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("call to %q: not a known peer of %q", peer, m.opt.Self)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	tc, err := m.dialTLS(ctx, addr, ALPNCall)
	if err != nil {
		return fmt.Errorf("call to %s: %w", peer, err)
	}
	defer tc.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = tc.SetDeadline(d)
	}
	if err := json.NewEncoder(tc).Encode(req); err != nil {
		return fmt.Errorf("call to %s: %w", peer, err)
	}
	if err := json.NewDecoder(io.LimitReader(tc, maxCall)).Decode(resp); err != nil {
		return fmt.Errorf("call to %s: answer: %w", peer, err)
	}
	return nil
}

// acceptCall answers one call with Options.OnCall.
func (m *Mesh) acceptCall(tc *tls.Conn) {
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(callTimeout))
	var req json.RawMessage
	if err := json.NewDecoder(io.LimitReader(tc, maxCall)).Decode(&req); err != nil {
		m.log.Info("mesh call: unreadable request", "err", err)
		return
	}
	var resp any = map[string]string{"error": "this member answers no calls"}
	if m.opt.OnCall != nil {
		resp = m.opt.OnCall(req)
	}
	if err := json.NewEncoder(tc).Encode(resp); err != nil && !errors.Is(err, io.EOF) {
		m.log.Info("mesh call: answer not sent", "err", err)
	}
}
