// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// DefaultBatch is how many frames one recvmmsg or sendmmsg moves.
const DefaultBatch = 32

// maxPacket is the largest packet the socket may hand over: a
// segmentation-offload frame of up to 64 KiB plus its link header.
const maxPacket = 65536 + 18

// vlanRoom is the headroom before each received packet for an 802.1Q tag the
// NIC stripped (the kernel reports it in PACKET_AUXDATA), and auxSpace the
// room for that control message.
const (
	vlanRoom = 4
	auxSpace = 64
)

// mmsghdr is struct mmsghdr (x/sys/unix has no recvmmsg wrapper).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// packetDevice is a Device on an AF_PACKET socket bound to one interface.
type packetDevice struct {
	name  string
	f     *os.File
	rc    syscall.RawConn
	batch int

	// Read side, used by one goroutine.
	rmsgs []mmsghdr
	riov  []unix.Iovec // two per message: virtio-net header, packet
	rhdr  [][gso.VirtioLen]byte
	rbuf  [][]byte // vlanRoom bytes of headroom, then the packet
	raux  [][auxSpace]byte
	rn    int // messages received and not yet drained
	rnext int // next message to drain
	rseg  int // next segment of an offload frame being split
	rplan gso.Plan

	// Write side, used by one goroutine.
	wmsgs  []mmsghdr
	wiov   []unix.Iovec
	whdr   [gso.VirtioLen]byte // all zero: every frame sent is complete
	wmetas []gso.Meta          // Write's frames' metadata, parsed for WriteMeta
	wframe [][]byte
	// warena holds the segments and checksum-completed copies of the frames
	// being sent (allocated when the hub first hands over an offload frame).
	warena []byte

	rx, tx, segmented, dropped, vlans atomic.Uint64
}

// Open binds an AF_PACKET socket to the interface name in promiscuous mode.
// It needs CAP_NET_RAW. The interface must exist in the caller's network
// namespace and be up; Open changes nothing on it that outlives the socket.
func Open(name string, batch int) (Device, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("LAN interface %q: %w: it must exist in the member's network namespace (a host interface with hostNetwork, or a secondary pod interface)", name, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, fmt.Errorf("LAN interface %q is down: bring it up (ip link set %s up); the member does not change links", name, name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("opening a packet socket for %s: %w: the member needs CAP_NET_RAW (the operator grants it to clusters with a localBridge hub)", name, err)
		}
		return nil, fmt.Errorf("opening a packet socket for %s: %w", name, err)
	}
	fail := func(what string, err error) (Device, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket on %s: %s: %w", name, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	// A VLAN tag the NIC stripped comes back as a control message, so tagged
	// LAN frames keep their VLAN in the hub.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fail("PACKET_AUXDATA", err)
	}
	// Frames the bridge sends must not come back to it as received.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING (Linux 4.20 or later)", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	// Protocol 0 at socket() and ETH_P_ALL at bind: nothing from other
	// interfaces is queued before the bind.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous membership", err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	d := &packetDevice{name: name, f: f, rc: rc, batch: batch,
		rmsgs: make([]mmsghdr, batch), riov: make([]unix.Iovec, 2*batch),
		rhdr: make([][gso.VirtioLen]byte, batch), rbuf: make([][]byte, batch), raux: make([][auxSpace]byte, batch),
		wmsgs: make([]mmsghdr, batch), wiov: make([]unix.Iovec, 2*batch)}
	for i := range batch {
		d.rbuf[i] = make([]byte, vlanRoom+maxPacket)
		d.riov[2*i].Base, d.riov[2*i+1].Base = &d.rhdr[i][0], &d.rbuf[i][vlanRoom]
		d.riov[2*i].SetLen(gso.VirtioLen)
		d.riov[2*i+1].SetLen(maxPacket)
		d.rmsgs[i].hdr.Iov = &d.riov[2*i]
		d.rmsgs[i].hdr.SetIovlen(2)
		d.rmsgs[i].hdr.Control = &d.raux[i][0]
		d.wiov[2*i].Base = &d.whdr[0]
		d.wiov[2*i].SetLen(gso.VirtioLen)
		d.wmsgs[i].hdr.Iov = &d.wiov[2*i]
		d.wmsgs[i].hdr.SetIovlen(2)
	}
	return d, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (d *packetDevice) Name() string   { return d.name }
func (d *packetDevice) BatchSize() int { return d.batch }

// Offload is none: Read completes and splits what the kernel hands over,
// and a LAN takes only complete, MTU-sized frames.
func (d *packetDevice) Offload() ethdev.Offload { return ethdev.Offload{} }

func (d *packetDevice) MTU() int {
	ifi, err := net.InterfaceByName(d.name)
	if err != nil {
		return 0
	}
	return ifi.MTU
}

func (d *packetDevice) Stats() DeviceStats {
	return DeviceStats{RxFrames: d.rx.Load(), TxFrames: d.tx.Load(), Segmented: d.segmented.Load(), Dropped: d.dropped.Load(), VLANRestored: d.vlans.Load()}
}

func (d *packetDevice) Close() error { return d.f.Close() }

func closedErr(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

// recv blocks until recvmmsg returns at least one packet.
func (d *packetDevice) recv() error {
	var n int
	var serr error
	for i := range d.rmsgs {
		d.rmsgs[i].hdr.SetControllen(auxSpace) // the kernel shortens it to what it wrote
	}
	err := d.rc.Read(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&d.rmsgs[0])), uintptr(len(d.rmsgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EAGAIN, unix.EINTR:
			return false
		case 0:
			n = int(r)
		default:
			serr = e
		}
		return true
	})
	if err != nil {
		return closedErr(err)
	}
	if serr != nil {
		return fmt.Errorf("receiving from %s: %w", d.name, serr)
	}
	d.rn, d.rnext, d.rseg = n, 0, 0
	return nil
}

// Read drains the messages of one recvmmsg, completing partial checksums
// and splitting offload frames into bufs (a frame split over two Reads
// continues where it stopped).
func (d *packetDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < gso.VirtioLen {
		return 0, ethdev.ErrOffset
	}
	n := 0
	for n == 0 {
		if d.rnext >= d.rn {
			if err := d.recv(); err != nil {
				return 0, err
			}
		}
		for d.rnext < d.rn && n < len(bufs) {
			m := &d.rmsgs[d.rnext]
			if m.hdr.Flags&unix.MSG_TRUNC != 0 || m.len < gso.VirtioLen {
				d.dropped.Add(1)
				d.rnext++
				continue
			}
			h := gso.ParseVirtio(d.rhdr[d.rnext][:])
			pkt := d.rbuf[d.rnext][vlanRoom : vlanRoom+m.len-gso.VirtioLen]
			if d.rseg == 0 {
				pkt = d.restoreVLAN(d.rnext, pkt, &h)
			} else if d.rplan.Tagged {
				pkt = d.rbuf[d.rnext][:vlanRoom+m.len-gso.VirtioLen]
			}
			if !h.Segmented() {
				d.rnext++
				dst := bufs[n][offset:]
				if len(pkt) > len(dst) {
					d.dropped.Add(1)
					continue
				}
				if h.Flags&gso.NeedsCsum != 0 && !gso.FinishChecksum(pkt, int(h.CsumStart), int(h.CsumOffset)) {
					d.dropped.Add(1)
					continue
				}
				clear(bufs[n][offset-gso.VirtioLen : offset])
				sizes[n] = copy(dst, pkt)
				n++
				continue
			}
			if d.rseg == 0 {
				var ok bool
				tagged := len(pkt) > int(m.len-gso.VirtioLen)
				if d.rplan, ok = gso.PlanSegments(h, pkt); !ok {
					d.dropped.Add(1)
					d.rnext++
					continue
				}
				d.rplan.Tagged = tagged
				d.segmented.Add(1)
			}
			for d.rseg < d.rplan.Segs && n < len(bufs) {
				l := gso.Segment(&d.rplan, pkt, d.rseg, bufs[n][offset:])
				d.rseg++
				if l < 0 {
					d.dropped.Add(1)
					continue
				}
				clear(bufs[n][offset-gso.VirtioLen : offset])
				sizes[n] = l
				n++
			}
			if d.rseg >= d.rplan.Segs {
				d.rseg = 0
				d.rnext++
			}
		}
	}
	d.rx.Add(uint64(n))
	return n, nil
}

// Write sends frames with their metadata in front (ethdev.Device).
func (d *packetDevice) Write(bufs [][]byte, offset int) (int, error) {
	if offset < gso.VirtioLen {
		return 0, ethdev.ErrOffset
	}
	d.wframe, d.wmetas = d.wframe[:0], d.wmetas[:0]
	for _, b := range bufs {
		if len(b) < offset {
			d.wframe, d.wmetas = append(d.wframe, nil), append(d.wmetas, gso.Meta{}) // dropped and counted
			continue
		}
		d.wframe = append(d.wframe, b[offset:])
		d.wmetas = append(d.wmetas, gso.ParseVirtio(b[offset-gso.VirtioLen:offset]))
	}
	n, err := d.WriteMeta(d.wframe, d.wmetas)
	clear(d.wframe)
	return n, err
}

// WriteMeta sends frames to the LAN with as few sendmmsg calls as it can:
// ordinary frames as they are, offload frames completed or split into the
// arena first (the frames themselves may be shared with other hub ports and
// are never written).
func (d *packetDevice) WriteMeta(frames [][]byte, metas []gso.Meta) (int, error) {
	k, used, sent := 0, 0, 0
	flush := func() error {
		n, err := d.send(k)
		sent += n
		k, used = 0, 0
		return err
	}
	add := func(b []byte) error {
		if len(b) == 0 {
			d.dropped.Add(1)
			return nil
		}
		d.wiov[2*k+1].Base = &b[0]
		d.wiov[2*k+1].SetLen(len(b))
		k++
		if k == d.batch {
			return flush()
		}
		return nil
	}
	for i, f := range frames {
		var m gso.Meta
		if i < len(metas) {
			m = metas[i]
		}
		switch {
		case m.Segmented():
			p, ok := gso.PlanSegments(m, f)
			if !ok {
				d.dropped.Add(1)
				continue
			}
			d.segmented.Add(1)
			for s := range p.Segs {
				if used+p.MaxSegmentLen() > len(d.arena()) {
					if err := flush(); err != nil {
						return sent, err
					}
				}
				l := gso.Segment(&p, f, s, d.warena[used:])
				if l < 0 {
					d.dropped.Add(1)
					continue
				}
				seg := d.warena[used : used+l]
				used += l
				if err := add(seg); err != nil {
					return sent, err
				}
			}
		case m.Flags&gso.NeedsCsum != 0:
			if used+len(f) > len(d.arena()) {
				if err := flush(); err != nil {
					return sent, err
				}
			}
			c := d.warena[used : used+copy(d.warena[used:], f)]
			if !gso.FinishChecksum(c, int(m.CsumStart), int(m.CsumOffset)) {
				d.dropped.Add(1)
				continue
			}
			used += len(c)
			if err := add(c); err != nil {
				return sent, err
			}
		default:
			if err := add(f); err != nil {
				return sent, err
			}
		}
	}
	if k > 0 {
		if err := flush(); err != nil {
			return sent, err
		}
	}
	return len(frames), nil
}

// arena is the write side's scratch: room for every segment of the largest
// super-frame, so one super-frame leaves in one sendmmsg.
func (d *packetDevice) arena() []byte {
	if d.warena == nil {
		d.warena = make([]byte, 2*ethdev.MaxSuperFrame)
	}
	return d.warena
}

// send sends the first k messages of wmsgs (their iovecs set) and returns
// how many the kernel took; refused ones are dropped and counted.
func (d *packetDevice) send(k int) (int, error) {
	sent, done := 0, 0
	defer func() {
		for i := range k {
			d.wiov[2*i+1].Base = nil
		}
	}()
	for done < k {
		var r int
		var serr error
		err := d.rc.Write(func(fd uintptr) bool {
			n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&d.wmsgs[done])), uintptr(k-done), unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case unix.EAGAIN, unix.EINTR:
				return false
			case 0:
				r = int(n)
			default:
				serr = e
			}
			return true
		})
		if err != nil {
			return sent, closedErr(err)
		}
		if serr != nil {
			switch {
			case errors.Is(serr, unix.EMSGSIZE), errors.Is(serr, unix.EINVAL):
				d.dropped.Add(1) // longer than the interface's MTU
				done++
				continue
			case errors.Is(serr, unix.ENETDOWN), errors.Is(serr, unix.ENXIO), errors.Is(serr, unix.ENODEV):
				return sent, fmt.Errorf("sending to %s: %w", d.name, serr)
			}
			d.dropped.Add(1) // ENOBUFS: the interface's queue is full; drop as a switch does
			done++
			continue
		}
		done += r
		sent += r
		d.tx.Add(uint64(r))
	}
	return sent, nil
}

// restoreVLAN puts back the 802.1Q tag the NIC stripped from message i (the
// kernel reports it in PACKET_AUXDATA): the MAC addresses move into the
// headroom and the tag follows them, as it was on the wire. Offsets in the
// virtio-net header move with the payload. Untagged packets are returned as
// they are.
func (d *packetDevice) restoreVLAN(i int, pkt []byte, h *gso.Meta) []byte {
	m := &d.rmsgs[i].hdr
	aux := d.raux[i][:m.Controllen]
	for len(aux) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&aux[0]))
		l := int(cm.Len)
		if l < unix.SizeofCmsghdr || l > len(aux) {
			return pkt
		}
		if cm.Level == unix.SOL_PACKET && cm.Type == unix.PACKET_AUXDATA && l >= unix.SizeofCmsghdr+int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			ad := (*unix.TpacketAuxdata)(unsafe.Pointer(&aux[unix.SizeofCmsghdr]))
			if ad.Status&unix.TP_STATUS_VLAN_VALID == 0 || len(pkt) < 12 {
				return pkt
			}
			tpid := uint16(0x8100) // ETH_P_8021Q
			if ad.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = ad.Vlan_tpid
			}
			full := d.rbuf[i][:vlanRoom+len(pkt)]
			copy(full[0:12], full[vlanRoom:vlanRoom+12])
			binary.BigEndian.PutUint16(full[12:], tpid)
			binary.BigEndian.PutUint16(full[14:], ad.Vlan_tci)
			if h.CsumStart > 0 {
				h.CsumStart += vlanRoom
			}
			d.vlans.Add(1)
			return full
		}
		l = (l + 7) &^ 7 // CMSG_ALIGN
		if l > len(aux) {
			return pkt
		}
		aux = aux[l:]
	}
	return pkt
}
