// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Relayed sessions (docs/member-cluster.md, "The UDP data channel"): the
// client's TLS session ends at the entry member, which alone can run the
// exporter, while the session — and so its UDP endpoint — lives on the owner.
// The entry exports the keys of the first epochs (EpochKeys) and sends them
// with the relayed login; the owner seals and opens with a KeyTable over
// them, which asks the entry for the next epochs' keys well before it needs
// them. The client derives every key from its TLS session as for any other
// session: nothing changes on its side.

// RelayKeyEpochs is how many epochs' keys the entry sends at a time: at one
// epoch per RekeyAfterTime at most, 16 epochs last at least 32 minutes.
const RelayKeyEpochs = 16

// MaxRelayKeyEpochs bounds one hand-over (the relayed login's field, a refill).
const MaxRelayKeyEpochs = 64

// relayRefillMargin: a KeyTable asks for more keys once an epoch this close
// to the last one it holds is derived (8 epochs: 16 minutes or more ahead).
const relayRefillMargin = 8

// EpochKeyLen is one epoch's keys in EpochKeys' layout: client-to-server key,
// then server-to-client key.
const EpochKeyLen = 2 * KeyLen

// EpochKeys exports the keys of epochs [from, from+n) of both directions:
// n × (c2s key ‖ s2c key), what deriveKey would derive from exp.
func EpochKeys(exp Exporter, from uint32, n int) ([]byte, error) {
	if n < 1 || n > MaxRelayKeyEpochs {
		return nil, fmt.Errorf("datagram: %d epochs' keys asked for, 1..%d allowed", n, MaxRelayKeyEpochs)
	}
	out := make([]byte, 0, n*EpochKeyLen)
	for e := from; e < from+uint32(n); e++ {
		for _, dir := range [2]string{"c2s\x00", "s2c\x00"} {
			ctx := binary.BigEndian.AppendUint32([]byte(dir), e)
			k, err := exp(ExporterLabel, ctx, KeyLen)
			if err != nil {
				clear(out)
				return nil, fmt.Errorf("datagram: exporting the epoch %d key: %w", e, err)
			}
			out = append(out, k...)
			clear(k)
		}
	}
	return out, nil
}

// ErrNoKey is a KeyTable's answer for an epoch whose key it does not hold
// (not handed over yet, or already used).
var ErrNoKey = errors.New("datagram: no key for that epoch here (a relayed session's keys come from its entry member)")

// KeyTable is an Exporter over keys exported elsewhere (EpochKeys). Each
// (direction, epoch) key is handed out once — a Sealer and an Opener derive
// each of theirs once — and then forgotten. When an epoch within
// relayRefillMargin of the last one held is derived, it calls fetch, on a
// goroutine of its own, for the keys from the next epoch on; a failed fetch
// is retried at the next derivation.
type KeyTable struct {
	fetch func(from uint32) ([]byte, error)

	mu       sync.Mutex
	keys     map[uint32][]byte // epoch → c2s ‖ s2c; a used half is zeroed and nil
	used     map[uint32]uint8  // epoch → directions handed out (bit 0 c2s, bit 1 s2c)
	end      uint32            // keys are held for epochs below end
	fetching bool
	fetchErr error

	refilled func() // tests: called after each refill
}

// NewKeyTable holds keys (EpochKeys from epoch 0). fetch, if not nil, gets
// more from the epoch given on.
func NewKeyTable(keys []byte, fetch func(from uint32) ([]byte, error)) (*KeyTable, error) {
	t := &KeyTable{fetch: fetch, keys: map[uint32][]byte{}, used: map[uint32]uint8{}}
	if err := t.add(0, keys); err != nil {
		return nil, err
	}
	return t, nil
}

// add holds keys of the epochs from from on (mu held, or t not shared yet).
func (t *KeyTable) add(from uint32, keys []byte) error {
	if len(keys) == 0 || len(keys)%EpochKeyLen != 0 || len(keys)/EpochKeyLen > MaxRelayKeyEpochs {
		return fmt.Errorf("datagram: %d bytes of relayed keys, want 1..%d epochs of %d bytes", len(keys), MaxRelayKeyEpochs, EpochKeyLen)
	}
	for i := 0; i < len(keys)/EpochKeyLen; i++ {
		e := from + uint32(i)
		if _, ok := t.keys[e]; ok || e < t.end {
			continue // already held or used
		}
		t.keys[e] = append([]byte(nil), keys[i*EpochKeyLen:(i+1)*EpochKeyLen]...)
	}
	t.end = max(t.end, from+uint32(len(keys)/EpochKeyLen))
	return nil
}

// Export is the Exporter: label must be ExporterLabel and context a
// direction and epoch, as deriveKey asks.
func (t *KeyTable) Export(label string, context []byte, length int) ([]byte, error) {
	if label != ExporterLabel || length != KeyLen || len(context) != 8 {
		return nil, fmt.Errorf("datagram: a key table exports only %d-byte %s keys", KeyLen, ExporterLabel)
	}
	var half int
	switch string(context[:4]) {
	case "c2s\x00":
		half = 0
	case "s2c\x00":
		half = 1
	default:
		return nil, fmt.Errorf("datagram: unknown key direction %q", context[:4])
	}
	e := binary.BigEndian.Uint32(context[4:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fetch != nil && !t.fetching && e+relayRefillMargin >= t.end {
		t.fetching = true
		go t.refill(t.end)
	}
	k, ok := t.keys[e]
	if !ok || t.used[e]&(1<<half) != 0 {
		if t.fetchErr != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoKey, t.fetchErr)
		}
		return nil, ErrNoKey
	}
	out := append([]byte(nil), k[half*KeyLen:(half+1)*KeyLen]...)
	clear(k[half*KeyLen : (half+1)*KeyLen])
	if t.used[e] |= 1 << half; t.used[e] == 3 {
		delete(t.keys, e)
		delete(t.used, e)
	}
	return out, nil
}

func (t *KeyTable) refill(from uint32) {
	keys, err := t.fetch(from)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fetching = false
	if err == nil {
		err = t.add(from, keys)
	}
	clear(keys)
	t.fetchErr = err
	if t.refilled != nil {
		t.refilled()
	}
}

// Held is the number of epochs whose keys are held (one direction unused at
// least), for tests and logs.
func (t *KeyTable) Held() (epochs int, end uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys), t.end
}
