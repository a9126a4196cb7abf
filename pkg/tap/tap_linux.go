// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build linux

package tap

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// TUNSETOFFLOAD flags (linux/if_tun.h; x/sys/unix has no names for them).
const (
	tunFCsum   = 0x01
	tunFTSO4   = 0x02
	tunFTSO6   = 0x04
	tunFTSOECN = 0x08
	tunFUSO4   = 0x20
	tunFUSO6   = 0x40
)

// TAP is a Linux TAP device opened with one file descriptor per queue.
//
// Read on the TAP reads from whichever queues have frames (an epoll set of
// the queues, itself registered with Go's poller), for a caller with one
// reader. A caller with a reader per core uses Queues instead: the kernel
// spreads flows over the queues by their hash, so every queue must be read,
// either through the TAP's Read or through each Queue's, never both. Write
// goes through the first queue: which queue a frame enters by makes no
// difference to the kernel.
type TAP struct {
	name    string
	queues  []*Queue
	devs    []Device
	offload ethdev.Offload
	batch   int

	// Read across queues (more than one queue only).
	ep     *os.File
	eprc   syscall.RawConn
	events []unix.EpollEvent

	closeOnce sync.Once
	closeErr  error
	// closed is set before the fds close: a poller wait they end returns
	// poll's unexported "use of closed file", which this turns into
	// ethdev.ErrClosed.
	closed atomic.Bool

	rxSuper, txSplit, dropped atomic.Uint64
}

// Queue is one queue of a TAP: a file descriptor of its own, for one reader
// goroutine and one writer goroutine. Closing a Queue closes the whole TAP.
type Queue struct {
	t   *TAP
	f   *os.File
	rc  syscall.RawConn
	hl  int // the virtio_net_hdr before each frame: gso.VirtioLen with IFF_VNET_HDR, else 0
	seg ethdev.Segmenter
	// A TAP cuts a frame longer than the read to its length and says
	// nothing, so each read(2) is a readv(2) with one byte past the caller's
	// buffer: a frame that reaches it did not fit.
	iov  [2]unix.Iovec
	over [1]byte
}

// Open creates a TAP device named name ("" lets the kernel pick tapN), not
// persistent: it disappears when the process closes it or exits. The link is
// left down; call SetUp (and SetMTU, AddAddress) to use it.
func Open(name string, o Options) (Device, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	t, err := openTAP(name, max(o.Queues, 1), o.Offload)
	if err == nil {
		return t, nil
	}
	// A kernel without IFF_MULTI_QUEUE (before 3.8) or IFF_VNET_HDR refuses
	// the flags with EINVAL, as it refuses a name taken by a TUN device;
	// water asks for a plain TAP and so tells the two apart.
	if errors.Is(err, unix.EINVAL) {
		if d, werr := openWater(name); werr == nil {
			return d, nil
		}
	}
	return nil, explainOpen(name, err)
}

func openTAP(name string, queues int, offload bool) (*TAP, error) {
	t := &TAP{}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE)
	if offload {
		flags |= unix.IFF_VNET_HDR
	}
	for i := range queues {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			t.Close()
			return nil, &os.PathError{Op: "open", Path: "/dev/net/tun", Err: err}
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			t.Close()
			return nil, err
		}
		ifr.SetUint16(flags)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			t.Close()
			return nil, err
		}
		if i == 0 {
			name = ifr.Name() // the kernel's choice for ""
			t.name = name
			if offload {
				if t.offload, err = setOffload(fd); err != nil {
					unix.Close(fd)
					t.Close()
					return nil, fmt.Errorf("enabling offloads on %s: %w", name, err)
				}
			}
		}
		f := os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			t.Close()
			return nil, err
		}
		q := &Queue{t: t, f: f, rc: rc}
		if offload {
			q.hl = gso.VirtioLen
		}
		t.queues = append(t.queues, q)
		t.devs = append(t.devs, q)
	}
	t.batch = 64
	if t.offload.Any() {
		// Each buffer holds a 64 KiB super-frame: a few per call carry as
		// much as 64 plain frames would.
		t.batch = 8
	}
	if queues > 1 {
		if err := t.openEpoll(); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

// setOffload sets the virtio_net_hdr size and asks for checksum, TCP and UDP
// segmentation offload; a kernel before 6.2 refuses UDP (USO) with EINVAL
// and is asked again without it.
func setOffload(fd int) (ethdev.Offload, error) {
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, gso.VirtioLen); err != nil {
		return ethdev.Offload{}, fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	base := tunFCsum | tunFTSO4 | tunFTSO6 | tunFTSOECN
	o := ethdev.Offload{VnetHdr: true, Csum: true, TSO4: true, TSO6: true, USO: true}
	err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base|tunFUSO4|tunFUSO6)
	if errors.Is(err, unix.EINVAL) {
		o.USO = false
		err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base)
	}
	if err != nil {
		return ethdev.Offload{}, fmt.Errorf("TUNSETOFFLOAD: %w", err)
	}
	return o, nil
}

func (t *TAP) openEpoll() error {
	efd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	// Level-triggered: a queue left with frames when the caller's buffers
	// ran out is reported again by the next epoll_wait.
	for i, q := range t.queues {
		var cerr error
		if err := q.rc.Control(func(fd uintptr) {
			cerr = unix.EpollCtl(efd, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)})
		}); err != nil || cerr != nil {
			unix.Close(efd)
			return fmt.Errorf("epoll_ctl: %w", errors.Join(err, cerr))
		}
	}
	if err := unix.SetNonblock(efd, true); err != nil {
		unix.Close(efd)
		return err
	}
	t.ep = os.NewFile(uintptr(efd), "epoll:"+t.name)
	if t.eprc, err = t.ep.SyscallConn(); err != nil {
		return err
	}
	t.events = make([]unix.EpollEvent, len(t.queues))
	return nil
}

func (t *TAP) Name() string            { return t.name }
func (t *TAP) MTU() int                { return linkMTU(t.name) }
func (t *TAP) BatchSize() int          { return t.batch }
func (t *TAP) Offload() ethdev.Offload { return t.offload }

// Queues are the TAP's queues as Devices, one reader each.
func (t *TAP) Queues() []Device { return t.devs }

// Stats are the TAP's counters over all queues.
func (t *TAP) Stats() Stats {
	return Stats{RxSuper: t.rxSuper.Load(), TxSplit: t.txSplit.Load(), Dropped: t.dropped.Load()}
}

// Close closes every queue, which removes the device, and ends blocked Reads.
func (t *TAP) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		var errs []error
		if t.ep != nil {
			errs = append(errs, t.ep.Close())
		}
		for _, q := range t.queues {
			errs = append(errs, q.f.Close())
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

func (t *TAP) Write(bufs [][]byte, offset int) (int, error) { return t.queues[0].Write(bufs, offset) }

// Read reads from whichever queues have frames.
func (t *TAP) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(t.queues) == 1 {
		return t.queues[0].Read(bufs, sizes, offset)
	}
	if offset < gso.VirtioLen {
		return 0, ethdev.ErrOffset
	}
	n := 0
	var rerr error
	err := t.eprc.Read(func(efd uintptr) bool {
		k, err := unix.EpollWait(int(efd), t.events, 0)
		for errors.Is(err, unix.EINTR) {
			k, err = unix.EpollWait(int(efd), t.events, 0)
		}
		if err != nil {
			rerr = fmt.Errorf("epoll_wait on %s: %w", t.name, err)
			return true
		}
		for _, ev := range t.events[:k] {
			if n == len(bufs) {
				break
			}
			q := t.queues[ev.Fd]
			var m int
			var qerr error
			if cerr := q.rc.Control(func(fd uintptr) { m, qerr = q.readFrames(int(fd), bufs[n:], sizes[n:], offset) }); cerr != nil {
				rerr = t.closedErr(cerr)
				return true
			}
			n += m
			if qerr != nil {
				rerr = qerr
				return true
			}
		}
		return n > 0
	})
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, t.closedErr(err)
	}
	return 0, rerr
}

func (t *TAP) closedErr(err error) error {
	if t.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ethdev.ErrClosed
	}
	return err
}

func (q *Queue) Name() string            { return q.t.name }
func (q *Queue) MTU() int                { return q.t.MTU() }
func (q *Queue) BatchSize() int          { return q.t.batch }
func (q *Queue) Offload() ethdev.Offload { return q.t.offload }
func (q *Queue) Close() error            { return q.t.Close() }

// Read reads this queue's frames: as many as are waiting, up to len(bufs),
// one read(2) each (a TAP hands over one frame per read).
func (q *Queue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < gso.VirtioLen {
		return 0, ethdev.ErrOffset
	}
	n := 0
	var rerr error
	err := q.rc.Read(func(fd uintptr) bool {
		n, rerr = q.readFrames(int(fd), bufs, sizes, offset)
		return n > 0 || rerr != nil
	})
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, q.t.closedErr(err)
	}
	return 0, rerr
}

// readFrames reads until the queue is empty (EAGAIN) or bufs are full.
func (q *Queue) readFrames(fd int, bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	defer func() { q.iov[0].Base = nil }() // pin no caller buffer
	for n < len(bufs) {
		b := bufs[n][offset-q.hl:]
		if len(b) == 0 {
			return n, fmt.Errorf("reading TAP %s: no room after offset %d", q.t.name, offset)
		}
		r, err := q.readv(fd, b)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			return n, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EFAULT), errors.Is(err, unix.EINVAL):
			// The frame did not fit the buffer; the kernel has dropped it.
			q.t.dropped.Add(1)
			continue
		case errors.Is(err, unix.EBADFD):
			return n, fmt.Errorf("reading TAP %s: %w (the device was removed)", q.t.name, err)
		default:
			return n, fmt.Errorf("reading TAP %s: %w", q.t.name, err)
		}
		if r > len(b) || r < q.hl {
			q.t.dropped.Add(1)
			continue
		}
		h := bufs[n][offset-gso.VirtioLen : offset]
		if q.hl == 0 {
			clear(h)
		} else if h[1] != gso.TypeNone {
			q.t.rxSuper.Add(1)
		}
		sizes[n] = r - q.hl
		n++
	}
	return n, nil
}

// readv reads one frame. Reads and writes on a TAP's queue are raw system calls, which the
// Go scheduler does not see. The fd is non-blocking, so they never wait (a full
// or empty queue is EAGAIN and the poller waits instead), but a write of a
// super-frame runs the receiving namespace's whole network stack inline and
// takes tens of µs. Through syscall.Syscall such a call outlasts a sysmon tick
// on a busy machine, so sysmon hands the goroutine's P to another thread (a
// futex wake and, on return, a park) and keeps itself waking every 20 µs:
// on a client sharing two cores that was a quarter of its time.
func (q *Queue) readv(fd int, b []byte) (int, error) {
	q.iov[0].Base = &b[0]
	q.iov[0].SetLen(len(b))
	q.iov[1].Base = &q.over[0]
	q.iov[1].SetLen(1)
	r, _, e := unix.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&q.iov[0])), 2)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// Write writes each frame with one write(2) (a TAP takes one frame per
// write); a frame the device cannot take whole is completed or split first.
func (q *Queue) Write(bufs [][]byte, offset int) (int, error) {
	if offset < gso.VirtioLen {
		return 0, ethdev.ErrOffset
	}
	for i, b := range bufs {
		if len(b) <= offset {
			q.t.dropped.Add(1)
			continue
		}
		m := gso.ParseVirtio(b[offset-gso.VirtioLen : offset])
		if q.t.offload.Accepts(m) {
			if err := q.write(b[offset-q.hl:]); err != nil {
				return i, err
			}
			continue
		}
		q.t.txSplit.Add(1)
		var werr error
		if !q.seg.Split(m, b[offset:], func(p []byte) {
			if werr == nil {
				werr = q.write(p[gso.VirtioLen-q.hl:])
			}
		}) {
			q.t.dropped.Add(1)
		}
		if werr != nil {
			return i, werr
		}
	}
	return len(bufs), nil
}

// write sends one frame. Only a closed or removed device is an error; a
// frame the kernel refuses (link down: EIO, a header it does not accept:
// EINVAL) is dropped and counted, as a switch port would.
func (q *Queue) write(p []byte) error {
	var werr error
	err := q.rc.Write(func(fd uintptr) bool {
		for {
			_, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			werr = nil
			if e != 0 {
				werr = e
			}
			switch {
			case errors.Is(werr, unix.EINTR):
				continue
			case errors.Is(werr, unix.EAGAIN):
				return false
			}
			return true
		}
	})
	if err != nil {
		return q.t.closedErr(err)
	}
	switch {
	case werr == nil:
		return nil
	case errors.Is(werr, unix.EBADFD):
		return fmt.Errorf("writing TAP %s: %w (the device was removed)", q.t.name, werr)
	}
	q.t.dropped.Add(1)
	return nil
}
