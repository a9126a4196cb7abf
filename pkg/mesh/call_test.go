// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package mesh

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// A call reaches the peer's OnCall over mutual TLS and brings its answer
// back; a peer that answers no calls says so; an unknown peer is an error.
func TestCall(t *testing.T) {
	ca := newTestCA(t)
	a := startNode(t, "a", "127.0.0.1:0", ca.conf)
	b := startNode(t, "b", "127.0.0.1:0", ca.conf)
	b.m.opt.OnCall = func(req []byte) any {
		var in struct{ N int }
		if err := json.Unmarshal(req, &in); err != nil {
			return map[string]string{"error": err.Error()}
		}
		return map[string]int{"double": 2 * in.N}
	}
	connect(a, b)
	var out struct{ Double int }
	if err := a.m.Call(context.Background(), "b", map[string]int{"n": 21}, &out); err != nil || out.Double != 42 {
		t.Fatalf("call: %+v, %v", out, err)
	}
	var refused struct{ Error string }
	if err := b.m.Call(context.Background(), "a", map[string]int{"n": 1}, &refused); err != nil || !strings.Contains(refused.Error, "answers no calls") {
		t.Fatalf("call to a member without OnCall: %+v, %v", refused, err)
	}
	if err := a.m.Call(context.Background(), "c", nil, &out); err == nil {
		t.Fatal("a call to an unknown peer succeeded")
	}
}
