package bridge

import "encoding/binary"

// The virtio-net header a packet socket with PACKET_VNET_HDR puts before
// each frame (struct virtio_net_hdr, host byte order).
const (
	vnetHdrLen      = 10
	vnetNeedsCsum   = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	gsoNone         = 0
	gsoTCPv4        = 1
	gsoTCPv6        = 4
	gsoUDPL4        = 5
	gsoECN          = 0x80
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeVLAN   = 0x8100
	tcpFlagFIN      = 0x01
	tcpFlagPSH      = 0x08
	tcpFlagCWR      = 0x80
	ipv6HeaderLen   = 40
	udpHeaderLen    = 8
	minTCPHeaderLen = 20
)

type vnetHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

func parseVnetHdr(b []byte) vnetHdr {
	return vnetHdr{
		flags: b[0], gsoType: b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// csumAdd adds b to a ones'-complement sum of big-endian 16-bit words.
func csumAdd(sum uint64, b []byte) uint64 {
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

func csumFold(sum uint64) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// finishChecksum completes a checksum the sender left to hardware: the field
// at start+offset holds the pseudo-header sum, and the checksum covers
// everything from start to the end of the frame.
func finishChecksum(pkt []byte, start, offset int) bool {
	at := start + offset
	if start <= 0 || at+2 > len(pkt) {
		return false
	}
	c := ^csumFold(csumAdd(0, pkt[start:]))
	if c == 0 && offset == 6 { // UDP: 0 means "no checksum"
		c = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[at:], c)
	return true
}

// l3Offset finds the IP header behind the Ethernet (and one 802.1Q) header.
func l3Offset(pkt []byte) (off int, etherType uint16, ok bool) {
	if len(pkt) < 14 {
		return 0, 0, false
	}
	off, etherType = 14, binary.BigEndian.Uint16(pkt[12:])
	if etherType == etherTypeVLAN {
		if len(pkt) < 18 {
			return 0, 0, false
		}
		off, etherType = 18, binary.BigEndian.Uint16(pkt[16:])
	}
	return off, etherType, etherType == etherTypeIPv4 || etherType == etherTypeIPv6
}

// segmentation describes how a segmentation-offload frame splits.
type segmentation struct {
	l3, l4, hdr int // offsets of the IP header, the TCP/UDP header, the payload
	v4, udp     bool
	mss, segs   int
	tagged      bool // the frame's VLAN tag was restored from PACKET_AUXDATA
}

// planSegments checks an offload frame and says how it splits, or ok=false
// for a frame this package does not split (dropped and counted).
func planSegments(h vnetHdr, pkt []byte) (s segmentation, ok bool) {
	gt := h.gsoType &^ gsoECN
	if gt != gsoTCPv4 && gt != gsoTCPv6 && gt != gsoUDPL4 || h.gsoSize == 0 {
		return s, false
	}
	l3, et, ok := l3Offset(pkt)
	if !ok {
		return s, false
	}
	s.l3, s.l4, s.v4, s.udp, s.mss = l3, int(h.csumStart), et == etherTypeIPv4, gt == gsoUDPL4, int(h.gsoSize)
	if s.v4 {
		if len(pkt) < l3+20 || s.l4 != l3+int(pkt[l3]&0x0f)*4 {
			return s, false
		}
	} else if s.l4 != l3+ipv6HeaderLen { // no extension headers
		return s, false
	}
	if s.udp {
		s.hdr = s.l4 + udpHeaderLen
	} else {
		if len(pkt) < s.l4+minTCPHeaderLen {
			return s, false
		}
		s.hdr = s.l4 + int(pkt[s.l4+12]>>4)*4
	}
	if s.hdr > len(pkt) {
		return s, false
	}
	payload := len(pkt) - s.hdr
	s.segs = (payload + s.mss - 1) / s.mss
	return s, s.segs > 0
}

// segment writes segment i of pkt into dst and returns its length (-1 when
// dst is too small). Headers are copied and fixed as the kernel's own
// software segmentation does: IP lengths, IPv4 ID and header checksum, TCP
// sequence number and flags (FIN and PSH on the last segment only, CWR on the
// first only), and the TCP or UDP checksum computed in full.
func segment(s *segmentation, pkt []byte, i int, dst []byte) int {
	start := s.hdr + i*s.mss
	end := min(start+s.mss, len(pkt))
	n := s.hdr + end - start
	if n > len(dst) {
		return -1
	}
	copy(dst, pkt[:s.hdr])
	copy(dst[s.hdr:], pkt[start:end])
	seg := dst[:n]
	l4len := n - s.l4
	if s.v4 {
		ip := seg[s.l3:s.l4]
		binary.BigEndian.PutUint16(ip[2:], uint16(n-s.l3))
		binary.BigEndian.PutUint16(ip[4:], binary.BigEndian.Uint16(pkt[s.l3+4:])+uint16(i))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^csumFold(csumAdd(0, ip)))
	} else {
		binary.BigEndian.PutUint16(seg[s.l3+4:], uint16(n-s.l3-ipv6HeaderLen))
	}
	l4 := seg[s.l4:]
	var proto uint64 = 6
	csumAt := 16
	if s.udp {
		proto, csumAt = 17, 6
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	} else {
		seq := binary.BigEndian.Uint32(pkt[s.l4+4:]) + uint32(i*s.mss)
		binary.BigEndian.PutUint32(l4[4:], seq)
		if i < s.segs-1 {
			l4[13] &^= tcpFlagFIN | tcpFlagPSH
		}
		if i > 0 {
			l4[13] &^= tcpFlagCWR
		}
	}
	l4[csumAt], l4[csumAt+1] = 0, 0
	var sum uint64
	if s.v4 {
		sum = csumAdd(0, seg[s.l3+12:s.l3+20])
	} else {
		sum = csumAdd(0, seg[s.l3+8:s.l3+40])
	}
	sum += proto + uint64(l4len)
	c := ^csumFold(csumAdd(sum, l4))
	if c == 0 && s.udp {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[csumAt:], c)
	return n
}
