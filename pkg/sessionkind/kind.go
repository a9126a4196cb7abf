// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package sessionkind is the one type for a session's kind (client or
// bridge), which decides the license a session uses. It stands alone so that
// pure packages (pkg/license) and the wire protocol share it without either
// importing the other or the Kubernetes API; the API's string enum
// (api/v1alpha1.SessionKind) and the login's wire byte are converted to it at
// those edges.
package sessionkind

import "fmt"

// Kind is a session's kind. The zero Kind is no kind: a login or option that
// forgot to set one is refused rather than counted as a client.
type Kind uint8

// The values are the login's wire byte (pkg/protocol), so converting from a
// validated byte is a plain conversion.
const (
	// Client joins one host to a hub (`hubfleet connect`): a client license.
	Client Kind = 1
	// Bridge joins a network segment to a hub (`hubfleet bridge`, a
	// cascade): a bridge license.
	Bridge Kind = 2
)

// N sizes per-kind arrays: [N]T is indexed by the Kind itself, so no
// arithmetic stands between a kind and its slot (slot 0, no kind, stays
// unused).
const N = int(Bridge) + 1

// Valid reports whether k is Client or Bridge.
func (k Kind) Valid() bool { return k == Client || k == Bridge }

// String is the lower-case name people read in logs and refusals.
func (k Kind) String() string {
	switch k {
	case Client:
		return "client"
	case Bridge:
		return "bridge"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}
