// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"strings"
	"testing"

	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// A session that ends because the client sent Shutdown (a server-to-client
// message) is logged as the client's protocol violation, not as "server shut
// the session down" (#16 item 5).
func TestEndReasonClientShutdownIsAViolation(t *testing.T) {
	got := endReason(&protocol.ShutdownError{Reason: "bye"})
	if !strings.Contains(got, "protocol violation by the client") || strings.Contains(got, "server shut") {
		t.Fatalf("endReason = %q", got)
	}
}
