// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// Seeds beyond these are in testdata/fuzz/<target>/.

func FuzzReadLogin(f *testing.F) {
	f.Add(encodeLoginRequest(&LoginRequest{Version: 1, MinVersion: 1, Hub: "default/vpn", User: "alice", Password: "pw", Kind: KindClient}))
	f.Add([]byte{msgLogin, 0, 0, 4, 0, 9, 0, 9})
	f.Add(encodeLoginRequest(&LoginRequest{Version: 1, MinVersion: 1, Hub: "h", Kind: KindBridge, Capabilities: CapGSO | 1<<31}))
	f.Add(encodeLoginRequest(&LoginRequest{Version: 1, MinVersion: 1, Hub: "h", User: "u", Password: "p", Kind: KindClient, Capabilities: CapUDP,
		Relayed: true, RelayEntry: "m1", RelayUDPKeys: make([]byte, relayUDPKeyLen)}))
	f.Add([]byte{msgLogin, 0, 0, 19, 0, 1, 0, 1, tagHub, 0, 1, 'h', tagKind, 0, 1, 1, tagRelayFlags, 0, 1, 1, tagRelayUDPKeys, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadLogin(&fakeConn{Reader: bytes.NewReader(data)})
		if le, ok := errors.AsType[*LoginError](err); ok {
			// Every refusal must be sendable and readable by the client.
			b := encodeLoginResult(le.Result())
			if _, err := decodeLoginResult(b[headerLen:]); err != nil {
				t.Fatalf("refusal %v does not decode: %v", le, err)
			}
			return
		}
		if err != nil {
			return
		}
		b := encodeLoginRequest(req)
		again, err := decodeLoginRequest(b[headerLen:])
		if err != nil {
			t.Fatalf("accepted request %+v does not re-decode: %v", req, err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, again)
		}
	})
}

func FuzzReadLoginResult(f *testing.F) {
	f.Add(encodeLoginResult(&LoginResult{Code: OK, Version: 1, SessionID: [16]byte{1}, Ticket: []byte("t"),
		TicketExpiry: time.UnixMilli(1e12), KeepaliveInterval: time.Second, DeadPeerTimeout: 3 * time.Second, MaxFrame: 1600}))
	f.Add(encodeLoginResult(&LoginResult{Code: Redirect, Message: "go there", RedirectAddr: "10.0.0.1:443"}))
	f.Add(encodeLoginResult(&LoginResult{Code: OK, Version: 1, KeepaliveInterval: time.Second, DeadPeerTimeout: 3 * time.Second,
		MaxFrame: 1600, Capabilities: CapGSO}))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := readMessage(bytes.NewReader(data), msgLoginResult, maxLoginBody)
		if err != nil {
			return
		}
		res, err := decodeLoginResult(body)
		if err != nil {
			return
		}
		// Encoding what was decoded reaches a fixed point after one step.
		once := encodeLoginResult(res)
		res2, err := decodeLoginResult(once[headerLen:])
		if err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if twice := encodeLoginResult(res2); !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not stable:\n%x\n%x", once, twice)
		}
		_ = res.Err()
	})
}

// FuzzReadFrames feeds an arbitrary stream to a session reader: it must end with an
// error at the end of the stream, never panic, and never hand out a frame longer
// than the session's max frame.
func FuzzReadFrames(f *testing.F) {
	f.Add(append(rawMessage(msgKeepalive, nil), rawMessage(msgFrames, []byte{2, 0, 1, 0xaa, 0, 2, 0xbb, 0xcc})...), uint16(1600), false)
	f.Add(rawMessage(msgShutdown, []byte("draining")), uint16(0), true)
	f.Fuzz(func(t *testing.T, data []byte, maxFrame uint16, batch bool) {
		c := NewConn(&fakeConn{Reader: bytes.NewReader(data)}, Config{MaxFrame: int(maxFrame)})
		limit := c.Config().MaxFrame
		bufs, sizes := [][]byte{make([]byte, limit), make([]byte, limit)}, make([]int, 2)
		total := 0
		for {
			var n int
			var err error
			if batch {
				n, err = c.ReadBatch(bufs, sizes)
				for i := range n {
					if sizes[i] > limit {
						t.Fatalf("frame of %d bytes over the %d limit", sizes[i], limit)
					}
				}
			} else {
				n, err = c.ReadFrames(func(fr []byte) {
					if len(fr) > limit {
						t.Fatalf("frame of %d bytes over the %d limit", len(fr), limit)
					}
				})
			}
			total += n
			if total > len(data)/2 {
				t.Fatalf("%d frames from %d bytes", total, len(data))
			}
			if err != nil {
				return
			}
		}
	})
}

// FuzzFramesRoundTrip checks the encoder against the decoder: whatever frames are
// written arrive, in order, except those over the max frame.
func FuzzFramesRoundTrip(f *testing.F) {
	f.Add([]byte("hello world, these are frames"), []byte{3, 0, 7, 200})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		// Each cut is a frame of up to 2 KiB: bound the work per input.
		cuts = cuts[:min(len(cuts), 1024)]
		var frames [][]byte
		for _, c := range cuts {
			n := min(int(c)*8, len(data)) // up to 2 KiB, so some exceed the 1600 limit
			frames = append(frames, data[:n])
		}
		w := &fakeConn{}
		if err := NewConn(w, Config{}).WriteFrames(frames); err != nil {
			t.Fatal(err)
		}
		r := NewConn(&fakeConn{Reader: bytes.NewReader(w.out.Bytes())}, Config{})
		var got [][]byte
		for {
			_, err := r.ReadFrames(func(fr []byte) { got = append(got, append([]byte{}, fr...)) })
			if err != nil {
				break
			}
		}
		var want [][]byte
		for _, fr := range frames {
			if len(fr) <= DefaultMaxFrame {
				want = append(want, fr)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d frames arrived, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}
