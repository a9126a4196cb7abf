// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"testing"

	"github.com/hubfleet/hubfleet/pkg/framing"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// FuzzOpen feeds the receiver arbitrary datagrams, and arbitrary payloads
// that did authenticate (a broken peer's): it never panics, refuses what does
// not authenticate, and hands out only frames inside the payload.
func FuzzOpen(f *testing.F) {
	s, _ := pair(f, AES256GCM, "k", "k")
	f.Add(seal(f, s, "\x01\x00\x00\x04\x00abcd"), []byte{1, 0, 0, 2, 0, 'h', 'i'})
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, Overhead), []byte{2, 0, 0, 1, 1, 0, 0, 0, 4, 'x', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, dgram, payload []byte) {
		_, o := pair(t, AES256GCM, "k", "k")
		if _, _, err := o.Open(dgram); err == nil && len(dgram) < Overhead {
			t.Fatal("a datagram shorter than its overhead was accepted")
		}
		lim := framing.Limits{MaxFrame: 1600, MaxSuper: gso.MaxSuperFrame}
		// A sealed payload always authenticates: what does Unpack make of it?
		sealer, opener := pair(t, ChaCha20Poly1305, "k", "k")
		if len(payload) > MaxDatagram-Overhead {
			payload = payload[:MaxDatagram-Overhead]
		}
		b := make([]byte, HeaderLen, HeaderLen+len(payload)+TagLen)
		d, err := sealer.Seal(TypeData, append(b, payload...))
		if err != nil {
			t.Fatal(err)
		}
		_, pl, err := opener.Open(d)
		if err != nil {
			t.Fatalf("own datagram refused: %v", err)
		}
		total := 0
		Unpack(pl, lim, func(fr []byte, m gso.Meta) {
			total += len(fr)
			if !framing.ValidMeta(m, len(fr)) {
				t.Fatalf("frame with unfit metadata %+v delivered", m)
			}
		})
		if total > len(pl) {
			t.Fatalf("%d frame bytes out of a %d-byte payload", total, len(pl))
		}
	})
}
