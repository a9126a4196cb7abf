// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import "testing"

// A member's refusal message that already begins with the code's words (as
// "license exhausted: no client connection license free …" does) is said once:
// clients printed "license exhausted: license exhausted: …" (#16 item 6).
func TestLoginErrorSaysTheReasonOnce(t *testing.T) {
	for _, c := range []struct {
		e    LoginError
		want string
	}{
		{LoginError{Code: LicenseExhausted, Message: "license exhausted: no client connection license free on member m-0 (2 of 2 in use)"},
			"login refused: license exhausted: no client connection license free on member m-0 (2 of 2 in use)"},
		{LoginError{Code: LicenseExhausted, Message: "cluster default/vpn has 2 of 2 client licenses in use"},
			"login refused: license exhausted: cluster default/vpn has 2 of 2 client licenses in use"},
		{LoginError{Code: HubFull}, "login refused: hub full"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}
