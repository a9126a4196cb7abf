// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"runtime"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// ExporterLabel is the RFC 5705 / RFC 8446 §7.5 exporter label the keys are
// derived with. The context names the direction and the key epoch, so every
// (direction, epoch) pair has its own key and no key is ever used twice.
const ExporterLabel = "EXPORTER-hubfleet-udp"

// KeyLen is the key length of both AEADs (AES-256-GCM, ChaCha20-Poly1305).
const KeyLen = 32

// Role says which direction's key a side sends with.
type Role uint8

const (
	Client Role = 1
	Server Role = 2
)

// Exporter derives keying material from a TLS session; it is
// tls.ConnectionState.ExportKeyingMaterial.
type Exporter func(label string, context []byte, length int) ([]byte, error)

// TLSExporter is the exporter of a completed TLS 1.3 connection.
func TLSExporter(cs tls.ConnectionState) Exporter { return cs.ExportKeyingMaterial }

// Suite is the AEAD a session uses. The receiver must open with the sender's
// AEAD and the header does not name it, so the member chooses one for both
// directions at login: AES-256-GCM only when both ends have AES hardware
// (the client says it has none with protocol.CapUDPChaCha).
type Suite uint8

const (
	// AES256GCM is chosen where the CPU has AES instructions (AES-NI and
	// carry-less multiply, ARMv8 AES and PMULL): there it is several times
	// faster than ChaCha20-Poly1305, and constant-time.
	AES256GCM Suite = 1
	// ChaCha20Poly1305 is chosen elsewhere: software AES is slow and leaks
	// timing, ChaCha20 is neither.
	ChaCha20Poly1305 Suite = 2
)

func (s Suite) String() string {
	switch s {
	case AES256GCM:
		return "AES-256-GCM"
	case ChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	}
	return fmt.Sprintf("suite %d", uint8(s))
}

// PreferredSuite is the suite this machine runs fastest and safely.
func PreferredSuite() Suite {
	switch runtime.GOARCH {
	case "amd64", "386":
		if cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ {
			return AES256GCM
		}
	case "arm64":
		if cpu.ARM64.HasAES && cpu.ARM64.HasPMULL {
			return AES256GCM
		}
	case "s390x":
		if cpu.S390X.HasAES && cpu.S390X.HasGHASH {
			return AES256GCM
		}
	case "ppc64", "ppc64le":
		return AES256GCM // POWER8 and later have vector AES, Go uses it
	}
	return ChaCha20Poly1305
}

// Valid reports a suite this package implements.
func (s Suite) Valid() bool { return s == AES256GCM || s == ChaCha20Poly1305 }

func (s Suite) aead(key []byte) (cipher.AEAD, error) {
	switch s {
	case AES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("datagram: unknown AEAD suite %d", uint8(s))
}

// deriveKey is the key of one direction and epoch. client is true for the
// client-to-server direction.
func deriveKey(exp Exporter, s Suite, clientToServer bool, epoch uint32) (cipher.AEAD, error) {
	var ctx [8]byte
	copy(ctx[:], "s2c\x00")
	if clientToServer {
		copy(ctx[:], "c2s\x00")
	}
	binary.BigEndian.PutUint32(ctx[4:], epoch)
	key, err := exp(ExporterLabel, ctx[:], KeyLen)
	if err != nil {
		return nil, fmt.Errorf("datagram: exporting the epoch %d key: %w", epoch, err)
	}
	a, err := s.aead(key)
	clear(key)
	return a, err
}
