// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"reflect"
	"testing"
	"time"
)

// FuzzParse: the decoder never panics, and what it accepts encodes and
// decodes to the same message. Frames built from the fuzzer's payload go
// through the server too, which must not panic on any of them.
func FuzzParse(f *testing.F) {
	f.Add((&Message{Op: OpRequest, Type: Discover, CHAddr: macA, ClientID: []byte{1, 2}}).Append(nil))
	f.Add((&Message{Op: OpRequest, Type: Request, CHAddr: macB, ServerID: ip("10.8.0.10"), RequestedIP: ip("10.8.0.11")}).Append(nil))
	f.Add((&Message{Op: OpReply, Type: Ack, LeaseTime: time.Hour, Routers: nil}).Append(nil))
	c, _ := Settings{Prefix: "10.8.0.0/24", RangeStart: "10.8.0.10", RangeEnd: "10.8.0.20"}.Config()
	s := NewServer(c, func([]byte) {}, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		Wants(b)
		ParseARP(b)
		s.Handle(AppendUDP(nil, UDP{SrcMAC: macA, DstMAC: Broadcast, SrcIP: IPUnspecified, DstIP: IPBroadcast, SrcPort: 68, DstPort: 67, Payload: b}), t0)
		s.Handle(b, t0)
		s.Tick(t0.Add(time.Second))
		if err != nil {
			return
		}
		again, err := Parse(m.Append(nil))
		if err != nil {
			t.Fatalf("re-encoded message refused: %v", err)
		}
		// Parse reads an empty list option as absent and Append skips
		// addresses that are not IPv4, so compare after normalising both.
		norm(m)
		norm(again)
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip\n got %+v\nwant %+v", again, m)
		}
	})
}

func norm(m *Message) {
	if len(m.Routers) == 0 || len(m.Routers) > 63 {
		m.Routers = nil
	}
	if len(m.DNS) == 0 || len(m.DNS) > 63 {
		m.DNS = nil
	}
	if len(m.ClientID) == 0 {
		m.ClientID = nil
	}
	if len(m.ParamList) == 0 {
		m.ParamList = nil
	}
}
