// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package v1alpha1

import (
	"testing"

	"github.com/hubfleet/hubfleet/pkg/sessionkind"
)

func TestSessionKindConversion(t *testing.T) {
	for _, k := range []sessionkind.Kind{sessionkind.Client, sessionkind.Bridge} {
		if got := SessionKindOf(k).Kind(); got != k {
			t.Errorf("%v → %q → %v", k, SessionKindOf(k), got)
		}
	}
	if SessionKind("Cascade").Kind().Valid() || SessionKindOf(0) != "" {
		t.Error("an unknown kind converted to a valid one")
	}
}
