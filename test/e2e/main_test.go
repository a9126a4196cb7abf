// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package e2e is the end-to-end suite of the local Kubernetes (issue #6): the
// operator and a member cluster as pods from the image built from this checkout,
// clients in network namespaces, failover measured end to end. It runs only with
// HUBFLEET_E2E=1 (`make e2e`); see docs/e2e.md.
package e2e

import (
	"testing"

	"github.com/hubfleet/hubfleet/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }
