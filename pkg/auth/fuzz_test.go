// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package auth

import (
	"bytes"
	"testing"
)

func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$c29tZWhhc2hzb21laGFzaA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Add("$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Fuzz(func(t *testing.T, phc string) {
		p, err := ParseHash(phc)
		if err != nil {
			return
		}
		if err := p.check(); err != nil {
			t.Fatalf("ParseHash accepted %q with out-of-limit params: %v", phc, err)
		}
		// Only compute hashes the fuzzer can afford; limits are checked above.
		if p.Memory <= 256 && p.Time <= 2 {
			if _, err := VerifyPassword(phc, "pw"); err != nil {
				t.Fatalf("ParseHash accepted %q but VerifyPassword refused it: %v", phc, err)
			}
		}
	})
}

func FuzzVerifyTicket(f *testing.F) {
	k := testKey(7)
	for _, c := range []TicketClaims{
		{User: "alice", Hub: "default/vpn", Kind: 1},
		{User: "", Hub: "", Kind: 2, SessionID: [16]byte{9}},
		{User: "bob", Hub: "h", Kind: 1, Credential: CredentialDigest("$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA")},
	} {
		tk, err := IssueTicket(k, c, t0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tk)
	}
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, ticket []byte) {
		c, err := VerifyTicket([]TicketKey{k}, ticket, t0)
		if err != nil {
			return
		}
		// Accepted tickets are canonical: re-issuing their claims gives the same bytes.
		again, err := IssueTicket(k, c, t0)
		if err != nil {
			t.Fatalf("accepted ticket's claims cannot be re-issued: %v", err)
		}
		if ticket[0] == ticketVersionV1 {
			// A version 1 ticket is re-issued as version 2 with the same claims.
			if c2, err := VerifyTicket([]TicketKey{k}, again, t0); err != nil || c2 != c {
				t.Fatalf("version 1 ticket %x re-issued as %x: claims %+v, %v; want %+v", ticket, again, c2, err, c)
			}
			return
		}
		if !bytes.Equal(again, ticket) {
			t.Fatalf("accepted a non-canonical ticket %x (canonical %x)", ticket, again)
		}
	})
}
