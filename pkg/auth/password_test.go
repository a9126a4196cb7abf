// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// cheap keeps tests fast; the default cost is exercised once and in benchmarks.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashPasswordDefaultIsOWASPAndVerifies(t *testing.T) {
	phc, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("default hash %q does not carry the documented OWASP cost", phc)
	}
	p, err := ParseHash(phc)
	if err != nil {
		t.Fatal(err)
	}
	if p.SaltLen != 16 || p.KeyLen != 32 {
		t.Fatalf("salt %d bytes, key %d bytes; want 16 and 32", p.SaltLen, p.KeyLen)
	}
	if ok, err := VerifyPassword(phc, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, err := VerifyPassword(phc, "correct horse "); ok || err != nil {
		t.Fatalf("wrong password: ok=%v err=%v, want false, nil", ok, err)
	}
}

func TestHashesOfOnePasswordDiffer(t *testing.T) {
	a, err := HashPasswordWith("pw", cheap)
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPasswordWith("pw", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two hashes of one password are equal (%s): the salt is not random", a)
	}
}

// A hash made elsewhere with other costs, salt and key lengths must verify with the
// costs written in it, not with our defaults.
func TestVerifyHonoursParamsInTheString(t *testing.T) {
	salt := []byte("0123456789abcdef0123")
	key := argon2.IDKey([]byte("s3cret"), salt, 3, 256, 4, 24)
	b64 := base64.RawStdEncoding
	phc := fmt.Sprintf("$argon2id$v=19$m=256,t=3,p=4$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
	if ok, err := VerifyPassword(phc, "s3cret"); !ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if ok, _ := VerifyPassword(phc, "s3cre"); ok {
		t.Fatal("wrong password accepted")
	}
}

func TestEmptyPasswordRefused(t *testing.T) {
	if _, err := HashPassword(""); !errors.Is(err, ErrEmptyPassword) {
		t.Fatalf("err = %v, want ErrEmptyPassword", err)
	}
}

func TestMalformedHashesNameTheProblem(t *testing.T) {
	good, err := HashPasswordWith("pw", cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	cases := map[string]struct{ phc, want string }{
		"empty":          {"", "fields"},
		"plaintext":      {"hunter2", "fields"},
		"bcrypt":         {"$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "fields"},
		"argon2i":        {"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, "only argon2id"},
		"old version":    {"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, "version"},
		"no version":     {"$argon2id$m=64,t=1,p=1$" + salt + "$" + key, "fields"},
		"cost order":     {"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, "m=<number>"},
		"cost not num":   {"$argon2id$v=19$m=lots,t=1,p=1$" + salt + "$" + key, "not a number"},
		"4 GiB memory":   {"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key, "memory"},
		"1000 passes":    {"$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key, "time cost"},
		"zero threads":   {"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "parallelism"},
		"300 threads":    {"$argon2id$v=19$m=64,t=1,p=300$" + salt + "$" + key, "parallelism"},
		"padded salt":    {"$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, "salt"},
		"short salt":     {"$argon2id$v=19$m=64,t=1,p=1$YWJj$" + key, "salt of 3 bytes"},
		"short hash":     {"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$YWJj", "hash of 3 bytes"},
		"huge":           {strings.Repeat("$", 10000), "longer than any valid hash"},
		"trailing field": {good + "$x", "fields"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ok, err := VerifyPassword(c.phc, "pw")
			if ok || err == nil {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want an error", c.phc, ok, err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "hubfleet hash-password") {
				t.Fatalf("error %q should mention %q and how to make a good hash", err, c.want)
			}
		})
	}
}
