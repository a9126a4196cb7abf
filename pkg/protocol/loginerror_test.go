// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import "testing"

// A member's refusal message that already begins with the code's words (as
// "licence exhausted: no client connection licence free …" does) is said once:
// clients printed "licence exhausted: licence exhausted: …" (#16 item 6).
func TestLoginErrorSaysTheReasonOnce(t *testing.T) {
	for _, c := range []struct {
		e    LoginError
		want string
	}{
		{LoginError{Code: LicenceExhausted, Message: "licence exhausted: no client connection licence free on member m-0 (2 of 2 in use)"},
			"login refused: licence exhausted: no client connection licence free on member m-0 (2 of 2 in use)"},
		{LoginError{Code: LicenceExhausted, Message: "cluster default/vpn has 2 of 2 client licences in use"},
			"login refused: licence exhausted: cluster default/vpn has 2 of 2 client licences in use"},
		{LoginError{Code: HubFull}, "login refused: hub full"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}
