// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// /readyz follows MetricsOptions.Ready and says why a member is not ready;
// without it (file mode) it answers like /healthz.
func TestReadyz(t *testing.T) {
	var why atomic.Pointer[error]
	web := httptest.NewServer(MetricsHandler(nil, MetricsOptions{Ready: func() error {
		if e := why.Load(); e != nil {
			return *e
		}
		return nil
	}}))
	defer web.Close()
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(web.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("ready member: /readyz %d", code)
	}
	fenced := errors.New("fenced: the member Lease was not renewed within 3s")
	why.Store(&fenced)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "fenced") {
		t.Fatalf("fenced member: /readyz %d %q", code, body)
	}
	why.Store(nil)
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("ready again: /readyz %d", code)
	}

	plain := httptest.NewServer(MetricsHandler(nil, MetricsOptions{}))
	defer plain.Close()
	resp, err := http.Get(plain.URL + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("without Ready: /readyz %v %v", err, resp)
	}
	resp.Body.Close()
}
