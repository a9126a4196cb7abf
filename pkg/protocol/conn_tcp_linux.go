// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package protocol

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WrapTCP returns the TCP connection a session's TLS runs over (call it on the
// raw connection before tls.Client or tls.Server; anything but a *net.TCPConn
// is returned as it is). It changes two things about how the bytes reach the
// kernel, both measured on the client path (docs/benchmarks-tap.md):
//
//   - A batch leaves in one write(2). tls.Conn writes each record (16 KiB of
//     plaintext at most) with a write of its own, and over loopback or a fast
//     link every write becomes a segment that wakes the reader on the far
//     side: four wake-ups per 64 KiB super-frame per hop. Conn.write holds
//     the records of one batch back (hold) and writes them together (flush).
//   - Reads and writes are raw system calls, which the Go scheduler does not
//     see. The socket is non-blocking, so they never wait (EAGAIN hands the
//     wait to the poller, deadlines included), but a 64 KiB write runs the
//     receiver's TCP input inline and takes tens of µs: through
//     syscall.Syscall such a call outlasts a sysmon tick on a busy machine,
//     so sysmon hands the goroutine's P to another thread (a futex wake, and
//     a park when the call returns) and keeps itself waking every 20 µs.
func WrapTCP(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	w := &rawTCP{TCPConn: tc, rc: rc}
	w.readFn = w.doRead
	w.writeFn = w.doWrite
	return w
}

// rawTCP is a *net.TCPConn whose Read and Write are raw system calls and
// whose writes can be held back for one batch. tls.Conn reads from one
// goroutine at a time; it writes from one at a time too, but the writer that
// held a batch flushes it after tls.Conn has let go of its lock, when another
// goroutine (a Close sending its close_notify) may write: so the held buffer
// and the write state have locks of their own.
type rawTCP struct {
	*net.TCPConn
	rc syscall.RawConn

	// Read side, for rc.Read's callback (bound once: no closure per call).
	rbuf   []byte
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	hmu  sync.Mutex
	held *[]byte // records held back by hold; nil when writing through

	wmu     sync.Mutex // guards the write state below, one write(2) sequence at a time
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

// heldPool holds the buffers a batch's records gather in: a batch is at most
// flushAt bytes of frames plus its TLS overhead. Pooled, not per connection: a
// member holds thousands of mostly idle sessions.
var heldPool = sync.Pool{New: func() any {
	b := make([]byte, 0, flushAt+flushAt/16)
	return &b
}}

func (w *rawTCP) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !rawIO {
		return w.TCPConn.Read(b)
	}
	w.rbuf, w.rn, w.rerr = b, 0, nil
	err := w.rc.Read(w.readFn)
	n, rerr := w.rn, w.rerr
	w.rbuf = nil
	if err != nil {
		return 0, opErr("read", w.TCPConn, err)
	}
	if rerr != nil {
		return 0, opErr("read", w.TCPConn, rerr)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (w *rawTCP) doRead(fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&w.rbuf[0])), uintptr(len(w.rbuf)))
		switch e {
		case 0:
			w.rn = int(r)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		w.rerr = e
		return true
	}
}

func (w *rawTCP) Write(b []byte) (int, error) {
	w.hmu.Lock()
	if w.held != nil {
		*w.held = append(*w.held, b...)
		w.hmu.Unlock()
		return len(b), nil
	}
	w.hmu.Unlock()
	return w.writeThrough(b)
}

func (w *rawTCP) writeThrough(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !rawIO {
		return w.TCPConn.Write(b)
	}
	w.wmu.Lock()
	w.wbuf, w.wn, w.werr = b, 0, nil
	err := w.rc.Write(w.writeFn)
	n, werr := w.wn, w.werr
	w.wbuf = nil
	w.wmu.Unlock()
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, opErr("write", w.TCPConn, err)
	}
	return n, nil
}

// doWrite writes until all of wbuf is sent, the socket is full (false: the
// poller waits for room and calls again) or an error.
func (w *rawTCP) doWrite(fd uintptr) bool {
	for w.wn < len(w.wbuf) {
		p := w.wbuf[w.wn:]
		r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			w.wn += int(r)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			w.werr = e
			return true
		}
	}
	return true
}

// hold gathers the writes that follow until flush sends them in one go.
func (w *rawTCP) hold() {
	w.hmu.Lock()
	if w.held == nil {
		w.held = heldPool.Get().(*[]byte)
	}
	w.hmu.Unlock()
}

// flush sends what hold gathered.
func (w *rawTCP) flush() error {
	w.hmu.Lock()
	b := w.held
	w.held = nil
	w.hmu.Unlock()
	if b == nil {
		return nil
	}
	_, err := w.writeThrough(*b)
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		heldPool.Put(b)
	}
	return err
}

// opErr dresses err as net.TCPConn's own methods would, so callers that look
// for a *net.OpError, net.ErrClosed, os.ErrDeadlineExceeded or an errno find
// them.
func opErr(op string, c *net.TCPConn, err error) error {
	if errno, ok := errors.AsType[unix.Errno](err); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// tcpConn is the connection under the wrapper (SpliceTarget).
func (w *rawTCP) tcpConn() *net.TCPConn { return w.TCPConn }
