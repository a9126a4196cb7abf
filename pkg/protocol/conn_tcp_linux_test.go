// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package protocol

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair is a loopback TCP connection: a wrapped by WrapTCP, b plain.
func tcpPair(t *testing.T) (a *rawTCP, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	w, ok := WrapTCP(c).(*rawTCP)
	if !ok {
		t.Fatal("WrapTCP did not wrap a *net.TCPConn")
	}
	t.Cleanup(func() { w.Close(); b.Close() })
	return w, b
}

// Writes between hold and flush arrive whole and in order, after the ones
// written through before them.
func TestWrapTCPHeldWritesArriveInOrder(t *testing.T) {
	a, b := tcpPair(t)
	want := []byte("first;")
	if _, err := a.Write([]byte("first;")); err != nil {
		t.Fatal(err)
	}
	a.hold()
	for i := range 5 {
		p := bytes.Repeat([]byte{byte('a' + i)}, 20000)
		want = append(want, p...)
		if n, err := a.Write(p); n != len(p) || err != nil {
			t.Fatalf("held write = %d, %v", n, err)
		}
	}
	if err := a.flush(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the peer received other bytes than were written")
	}
	if _, err := b.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := a.Read(buf); err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// Deadlines, a closed connection and the peer's close give the errors a
// *net.TCPConn gives, which the session code and tls.Conn look for.
func TestWrapTCPErrorsAreThoseOfTCPConn(t *testing.T) {
	a, b := tcpPair(t)
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := a.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want os.ErrDeadlineExceeded", err)
	} else if _, ok := errors.AsType[*net.OpError](err); !ok {
		t.Fatalf("Read error %T is not a *net.OpError", err)
	}
	a.SetReadDeadline(time.Time{})

	// The peer reads nothing: the socket buffers fill and the write waits
	// for room until its deadline.
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	big := make([]byte, 1<<20)
	var err error
	for err == nil {
		_, err = a.Write(big)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that reads nothing = %v, want os.ErrDeadlineExceeded", err)
	}

	b.Close()
	a2, b2 := tcpPair(t)
	b2.Close()
	if _, err := a2.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want io.EOF", err)
	}

	a3, _ := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := a3.Read(make([]byte, 10))
		done <- err
	}()
	a3.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read blocked while the connection closed = %v, want net.ErrClosed", err)
	}
}
