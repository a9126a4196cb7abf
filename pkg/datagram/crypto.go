// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"crypto/cipher"
	"encoding/binary"
	"sync"
	"time"
)

// Key limits. The sender moves to the next epoch's key before either is
// reached; the receiver follows when the first datagram of the new epoch
// authenticates, so the sides stay in step without a message of their own.
const (
	// RekeyAfterMessages is far below AES-GCM's safe use of one key (TLS 1.3
	// stops at 2^24.5 full records, RFC 8446 §5.5) and of ChaCha20-Poly1305's.
	RekeyAfterMessages uint64 = 1 << 24
	// RejectAfterMessages: a sender that could not rekey (its exporter
	// failing) stops rather than go on with a worn key.
	RejectAfterMessages uint64 = RekeyAfterMessages + 1<<20
	// RekeyAfterTime bounds how long one key protects traffic, as
	// WireGuard's REKEY_AFTER_TIME.
	RekeyAfterTime = 2 * time.Minute
)

// Params are what both sides of a session agreed at login.
type Params struct {
	Session SessionID
	Suite   Suite
	Role    Role
	// Exporter is the TLS session's; it is kept to derive later epochs' keys.
	Exporter Exporter
}

// Sealer encrypts one direction of a session. It is safe for concurrent use:
// a session's writer and its path prober both send.
type Sealer struct {
	mu         sync.Mutex
	p          Params
	epoch      uint32
	aead       cipher.AEAD
	next       cipher.AEAD // the next epoch's key, derived in advance
	ctr        uint64
	epochStart time.Time
	nonce      [12]byte // a field, not a local: an interface call's argument escapes
	now        func() time.Time
	rekeyAfter uint64
}

// NewSealer starts the sending direction of p.Role at epoch 0.
func NewSealer(p Params) (*Sealer, error) {
	s := &Sealer{p: p, now: time.Now, rekeyAfter: RekeyAfterMessages}
	var err error
	if s.aead, err = deriveKey(p.Exporter, p.Suite, p.Role == Client, 0); err != nil {
		return nil, err
	}
	if s.next, err = deriveKey(p.Exporter, p.Suite, p.Role == Client, 1); err != nil {
		return nil, err
	}
	s.epochStart = s.now()
	return s, nil
}

// Epoch is the key epoch the next datagram goes under.
func (s *Sealer) Epoch() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Seal turns b into a datagram in place and returns it: b[HeaderLen:] holds
// the payload and b must have TagLen bytes of capacity beyond it. The header
// is written here. Nothing is allocated, except at a rekey (one exporter call
// per RekeyAfterMessages datagrams or RekeyAfterTime).
func (s *Sealer) Seal(typ byte, b []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The clock is read per datagram (a vDSO call, tens of nanoseconds
	// beside the AEAD's microsecond): an idle session's probes must not
	// stretch a key's life past RekeyAfterTime.
	if s.ctr >= s.rekeyAfter || s.now().Sub(s.epochStart) >= RekeyAfterTime {
		s.rekey()
	}
	if s.ctr >= RejectAfterMessages {
		return nil, ErrExhausted
	}
	h := Header{Type: typ, Session: s.p.Session, Epoch: uint8(s.epoch), Counter: s.ctr}
	s.ctr++
	putHeader(b, &h)
	binary.BigEndian.PutUint64(s.nonce[4:], h.Counter)
	out := s.aead.Seal(b[:HeaderLen], s.nonce[:], b[HeaderLen:], b[:HeaderLen])
	return out, nil
}

// rekey moves to the next epoch. A failure to derive the one after leaves the
// sender on its current key, which RejectAfterMessages then bounds.
func (s *Sealer) rekey() {
	if s.next == nil {
		if n, err := deriveKey(s.p.Exporter, s.p.Suite, s.p.Role == Client, s.epoch+1); err == nil {
			s.next = n
		} else {
			return
		}
	}
	s.aead, s.next = s.next, nil
	s.epoch++
	s.ctr = 0
	s.epochStart = s.now()
	s.next, _ = deriveKey(s.p.Exporter, s.p.Suite, s.p.Role == Client, s.epoch+1)
}

// Opener authenticates and decrypts the other direction. It keeps the
// previous epoch's key (datagrams sent before a rekey may arrive after the
// first one sent after it) and the next one, each with its own replay
// window. It is not safe for concurrent use: one goroutine receives a
// session's datagrams.
type Opener struct {
	p     Params
	prev  epochKey
	cur   epochKey
	next  epochKey
	nonce [12]byte
}

type epochKey struct {
	epoch uint32
	aead  cipher.AEAD
	win   Window
}

// NewOpener starts the receiving direction of p.Role (the peer's sending
// direction) at epoch 0.
func NewOpener(p Params) (*Opener, error) {
	o := &Opener{p: p}
	var err error
	if o.cur.aead, err = deriveKey(p.Exporter, p.Suite, p.Role == Server, 0); err != nil {
		return nil, err
	}
	o.next.epoch = 1
	if o.next.aead, err = deriveKey(p.Exporter, p.Suite, p.Role == Server, 1); err != nil {
		return nil, err
	}
	return o, nil
}

// Open authenticates b, a whole datagram, and decrypts it in place. payload
// aliases b. A datagram is accepted once: a replay, a duplicate, one older
// than the replay window or one that does not authenticate is refused with
// an error and changes nothing.
func (o *Opener) Open(b []byte) (h Header, payload []byte, err error) {
	if h, err = ParseHeader(b); err != nil {
		return h, nil, err
	}
	if h.Session != o.p.Session {
		return h, nil, ErrSession
	}
	var k *epochKey
	switch h.Epoch {
	case uint8(o.cur.epoch):
		k = &o.cur
	case uint8(o.next.epoch):
		k = &o.next
	case uint8(o.prev.epoch):
		k = &o.prev
	}
	if k == &o.next && k.aead == nil {
		// The derivation at advance failed: a relayed session's key table
		// (keytable.go) did not have the key yet. Try again, so the channel
		// recovers once it has; only then can this epoch authenticate.
		k.aead, _ = deriveKey(o.p.Exporter, o.p.Suite, o.p.Role == Server, k.epoch)
	}
	if k == nil || k.aead == nil {
		return h, nil, ErrEpoch
	}
	if !k.win.Check(h.Counter) {
		return h, nil, ErrReplay
	}
	binary.BigEndian.PutUint64(o.nonce[4:], h.Counter)
	payload, err = k.aead.Open(b[HeaderLen:HeaderLen], o.nonce[:], b[HeaderLen:], b[:HeaderLen])
	if err != nil {
		return h, nil, ErrAuth
	}
	k.win.Accept(h.Counter)
	if k == &o.next {
		o.advance()
	}
	return h, payload, nil
}

// advance makes the next epoch current once one of its datagrams has
// authenticated. Only an authenticated datagram moves the epochs, so a forger
// cannot make the receiver drop its keys.
func (o *Opener) advance() {
	o.prev, o.cur = o.cur, o.next
	o.next = epochKey{epoch: o.cur.epoch + 1}
	// A failed derivation leaves next empty: the sender (same exporter) will
	// not get further either, and its datagrams of that epoch are refused.
	o.next.aead, _ = deriveKey(o.p.Exporter, o.p.Suite, o.p.Role == Server, o.next.epoch)
}

// Epoch is the receiver's current epoch.
func (o *Opener) Epoch() uint32 { return o.cur.epoch }
