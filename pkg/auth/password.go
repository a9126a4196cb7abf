// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package auth holds hubfleet's credential primitives: argon2id password hashes for
// the users Secret of a VirtualHub, and HMAC resumption tickets that let a client
// reconnect to any member of a cluster without a password hash being recomputed.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism; it is part of the hash, not only a
	// speed setting, so a hash must be verified with the Threads it was made with.
	Threads uint8
	// SaltLen and KeyLen are in bytes; zero means the default (16 and 32).
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams is the OWASP password storage recommendation for argon2id
// (m=19 MiB, t=2, p=1). One verification costs ~30-40 ms of one core on the 2-core
// shared VM of docs/benchmarks-protocol.md, so a member checks only a few dozen
// password logins per second. That is why reconnects use resumption tickets
// instead: verifying one costs a few microseconds.
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Limits a hash must stay within before VerifyPassword computes it. A users Secret is
// written by a tenant, so without them one edited hash (m=4 GiB, t=1000) could pin a
// member's memory and CPU on every login attempt.
const (
	MaxMemoryKiB = 1 << 20 // 1 GiB
	MaxTime      = 32
	MaxThreads   = 16
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// HashPassword hashes password with DefaultParams and a fresh random salt and returns
// a PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	return HashPasswordWith(password, DefaultParams)
}

// HashPasswordWith is HashPassword with explicit cost parameters.
func HashPasswordWith(password string, p Params) (string, error) {
	if password == "" {
		return "", ErrEmptyPassword
	}
	if p.SaltLen == 0 {
		p.SaltLen = DefaultParams.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultParams.KeyLen
	}
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading a random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC argon2id string phc. A
// wrong password is (false, nil); a malformed or out-of-limits hash is (false, err)
// with an error saying what is wrong, so the member can report the broken Secret.
func VerifyPassword(phc, password string) (bool, error) {
	h, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// ParseHash checks a PHC argon2id string without computing it and returns its
// parameters, so a users Secret can be validated (and its cost reported) cheaply.
func ParseHash(phc string) (Params, error) {
	h, err := parsePHC(phc)
	return h.params, err
}

type phcHash struct {
	params Params
	salt   []byte
	key    []byte
}

// errHashFormat prefixes every parse error so a log line says which input was bad
// and what a good one looks like.
const errHashFormat = "bad argon2id password hash (want $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash>, as `hubfleet hash-password` prints)"

func parsePHC(s string) (phcHash, error) {
	var h phcHash
	fail := func(format string, args ...any) (phcHash, error) {
		return phcHash{}, fmt.Errorf("%s: %s", errHashFormat, fmt.Sprintf(format, args...))
	}
	// Cap before splitting: a Secret value can be megabytes.
	if len(s) > 512 {
		return fail("%d bytes long, longer than any valid hash", len(s))
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("%d '$'-separated fields, want 5 after a leading '$'", len(parts)-1)
	}
	if parts[1] != "argon2id" {
		return fail("algorithm %q, only argon2id is accepted", parts[1])
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return fail("version field %q, want v=19", parts[2])
	}
	if n, err := strconv.ParseUint(v, 10, 32); err != nil || n != argon2.Version {
		return fail("version %q, only v=%d is supported", v, argon2.Version)
	}
	if err := h.params.parseCost(parts[3]); err != nil {
		return fail("%v", err)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil {
		return fail("salt is not unpadded base64: %v", err)
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil {
		return fail("hash is not unpadded base64: %v", err)
	}
	h.params.SaltLen, h.params.KeyLen = uint32(len(h.salt)), uint32(len(h.key))
	if err := h.params.check(); err != nil {
		return fail("%v", err)
	}
	return h, nil
}

// parseCost parses "m=19456,t=2,p=1" (in that order, as every argon2 library writes it).
func (p *Params) parseCost(s string) error {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return fmt.Errorf("cost field %q, want m=<KiB>,t=<passes>,p=<threads>", s)
	}
	for i, name := range []string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return fmt.Errorf("cost field %q, want %s=<number> in position %d", fields[i], name, i+1)
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return fmt.Errorf("cost %s=%q is not a number", name, val)
		}
		switch name {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return fmt.Errorf("parallelism p=%d is above 255", n)
			}
			p.Threads = uint8(n)
		}
	}
	return nil
}

func (p Params) check() error {
	switch {
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("time cost t=%d outside 1..%d", p.Time, MaxTime)
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("parallelism p=%d outside 1..%d", p.Threads, MaxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxMemoryKiB:
		return fmt.Errorf("memory m=%d KiB outside %d..%d (8 KiB per thread up to 1 GiB)", p.Memory, 8*uint32(p.Threads), MaxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt of %d bytes, want %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("hash of %d bytes, want %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// ErrEmptyPassword is returned when hashing an empty password: an empty password in
// a users Secret is almost always a templating mistake, not a choice.
var ErrEmptyPassword = errors.New("refusing to hash an empty password: choose a non-empty one")
