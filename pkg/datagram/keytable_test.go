// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"bytes"
	"errors"
	"testing"
)

// TestKeyTableFollowsTheExporter is a relayed session: the client seals and
// opens with its TLS exporter, the owner with a KeyTable over the keys the
// entry exported, refilled from the entry as epochs pass. Both directions
// cross 40 epochs (more than two hand-overs' worth), and each key is handed
// out once.
func TestKeyTableFollowsTheExporter(t *testing.T) {
	exp := fakeExporter("tls session at the entry")
	first, err := EpochKeys(exp, 0, RelayKeyEpochs)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan uint32, 4)
	var fetches []uint32
	kt, err := NewKeyTable(first, func(from uint32) ([]byte, error) {
		started <- from
		return EpochKeys(exp, from, RelayKeyEpochs)
	})
	if err != nil {
		t.Fatal(err)
	}
	refilled := make(chan struct{}, 4)
	kt.refilled = func() { refilled <- struct{}{} }
	// wait lets a refill that an Export started finish before the next step,
	// so the test does not depend on goroutine timing (an
	// Export sets fetching before it returns).
	wait := func() {
		kt.mu.Lock()
		f := kt.fetching
		kt.mu.Unlock()
		if f {
			fetches = append(fetches, <-started)
			<-refilled
		}
	}
	cp := Params{Session: testSID, Suite: AES256GCM, Role: Client, Exporter: exp}
	op := Params{Session: testSID, Suite: AES256GCM, Role: Server, Exporter: kt.Export}
	cs, err := NewSealer(cp)
	if err != nil {
		t.Fatal(err)
	}
	co, err := NewOpener(cp)
	if err != nil {
		t.Fatal(err)
	}
	os, err := NewSealer(op)
	if err != nil {
		t.Fatal(err)
	}
	oo, err := NewOpener(op)
	if err != nil {
		t.Fatal(err)
	}
	wait()
	cs.rekeyAfter, os.rekeyAfter = 10, 10
	for i := range 400 {
		d := seal(t, cs, "up")
		wait()
		if _, p, err := oo.Open(d); err != nil || string(p) != "up" {
			t.Fatalf("client→owner datagram %d (epoch %d): %q, %v", i, cs.Epoch(), p, err)
		}
		wait()
		d = seal(t, os, "down")
		wait()
		if _, p, err := co.Open(d); err != nil || string(p) != "down" {
			t.Fatalf("owner→client datagram %d (epoch %d): %q, %v", i, os.Epoch(), p, err)
		}
	}
	if cs.Epoch() < 39 || os.Epoch() != cs.Epoch() || oo.Epoch() != cs.Epoch() {
		t.Fatalf("epochs: client sends %d, owner sends %d, owner receives %d", cs.Epoch(), os.Epoch(), oo.Epoch())
	}
	if len(fetches) < 2 || fetches[0] != RelayKeyEpochs || fetches[1] != 2*RelayKeyEpochs {
		t.Fatalf("refills from epochs %v, want %d, %d, …", fetches, RelayKeyEpochs, 2*RelayKeyEpochs)
	}
	// A key once handed out is gone: a second derivation of it fails.
	ctx := append([]byte("c2s\x00"), 0, 0, 0, 1)
	if _, err := kt.Export(ExporterLabel, ctx, KeyLen); !errors.Is(err, ErrNoKey) {
		t.Fatalf("epoch 1's key exported twice: %v", err)
	}
	if held, end := kt.Held(); held > int(end-cs.Epoch()) || end < cs.Epoch()+relayRefillMargin {
		t.Fatalf("holds %d epochs up to %d at epoch %d", held, end, cs.Epoch())
	}
}

func TestEpochKeysLayout(t *testing.T) {
	exp := fakeExporter("x")
	keys, err := EpochKeys(exp, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := func(dir string, e byte) []byte {
		k, _ := exp(ExporterLabel, append([]byte(dir), 0, 0, 0, e), KeyLen)
		return k
	}
	got := [][]byte{keys[0:32], keys[32:64], keys[64:96], keys[96:128]}
	exp2 := [][]byte{want("c2s\x00", 5), want("s2c\x00", 5), want("c2s\x00", 6), want("s2c\x00", 6)}
	for i := range got {
		if !bytes.Equal(got[i], exp2[i]) {
			t.Fatalf("key %d differs from the exporter's", i)
		}
	}
	if _, err := NewKeyTable(keys[:100], nil); err == nil {
		t.Fatal("a table took a partial epoch")
	}
	if _, err := EpochKeys(exp, 0, MaxRelayKeyEpochs+1); err == nil {
		t.Fatal("EpochKeys exported more than a hand-over may carry")
	}
}

// TestKeyTableLateRefill: the entry does not answer while the owner's key
// table runs out, so the owner cannot derive the next epoch's key when its
// receiver advances; the client's datagrams of that epoch are refused. Once
// the entry answers again the receiver derives the key it missed and opens
// them.
func TestKeyTableLateRefill(t *testing.T) {
	exp := fakeExporter("tls session at the entry")
	first, err := EpochKeys(exp, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	answer := false
	refilled := make(chan struct{}, 16)
	kt, err := NewKeyTable(first, func(from uint32) ([]byte, error) {
		if !answer {
			return nil, errors.New("entry not answering")
		}
		return EpochKeys(exp, from, RelayKeyEpochs)
	})
	if err != nil {
		t.Fatal(err)
	}
	kt.refilled = func() { refilled <- struct{}{} }
	wait := func() {
		kt.mu.Lock()
		f := kt.fetching
		kt.mu.Unlock()
		if f {
			<-refilled
		}
	}
	cs, err := NewSealer(Params{Session: testSID, Suite: AES256GCM, Role: Client, Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	oo, err := NewOpener(Params{Session: testSID, Suite: AES256GCM, Role: Server, Exporter: kt.Export})
	if err != nil {
		t.Fatal(err)
	}
	wait()
	cs.rekeyAfter = 1 // one datagram per epoch
	for e := range 4 {
		if _, _, err := oo.Open(seal(t, cs, "x")); err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
		wait()
	}
	// Epoch 4's key was never handed over: refused, and again.
	late := seal(t, cs, "late")
	for range 2 {
		if _, _, err := oo.Open(late); !errors.Is(err, ErrEpoch) {
			t.Fatalf("epoch 4 without its key: %v, want ErrEpoch", err)
		}
		wait()
	}
	answer = true
	if _, _, err := oo.Open(late); !errors.Is(err, ErrEpoch) {
		t.Fatalf("epoch 4 while the refill runs: %v, want ErrEpoch", err)
	}
	wait() // the refill that Open started
	if _, p, err := oo.Open(late); err != nil || string(p) != "late" {
		t.Fatalf("epoch 4 after the refill: %q, %v", p, err)
	}
	if oo.Epoch() != 4 {
		t.Fatalf("receiver at epoch %d, want 4", oo.Epoch())
	}
}
