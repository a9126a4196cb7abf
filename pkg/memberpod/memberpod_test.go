// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package memberpod

import (
	"strconv"
	"testing"
)

// The operator builds the pod from the integers, the member listens on the
// strings: they must name the same ports.
func TestPortsAgree(t *testing.T) {
	if ListenVPN != ":"+strconv.Itoa(PortVPN) {
		t.Errorf("ListenVPN %q is not port %d", ListenVPN, PortVPN)
	}
	if MeshPortString != strconv.Itoa(PortMesh) {
		t.Errorf("MeshPortString %q is not port %d", MeshPortString, PortMesh)
	}
}
