// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package bridge is the end-to-end test of a static hub's local bridge on the
// local Kubernetes (issue #8): a LAN made by the test, the hub bridged to it
// by one member at a time, the bridging member killed again and again, the
// LAN reachable again through another member, and no frame looped or
// duplicated meanwhile. It runs only with HUBFLEET_E2E=1; see docs/bridge.md.
package bridge

import (
	"testing"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }
