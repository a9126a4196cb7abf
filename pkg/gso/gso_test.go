package bridge

import (
	"encoding/binary"
	"testing"
)

// tcpFrame builds an Ethernet/IP/TCP frame with payload n bytes, as a local
// sender hands it to a packet socket with segmentation offload: the TCP
// checksum field holds only the pseudo-header sum.
func tcpFrame(v6 bool, n int, flags byte) []byte {
	l3 := 14
	ipLen := 20
	if v6 {
		ipLen = 40
	}
	f := make([]byte, l3+ipLen+20+n)
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 2})
	ip := f[l3:]
	if v6 {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv6)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(20+n))
		ip[6], ip[7] = 6, 64
		ip[23], ip[39] = 1, 2
	} else {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv4)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+20+n))
		binary.BigEndian.PutUint16(ip[4:], 1000)
		ip[8], ip[9] = 64, 6
		copy(ip[12:20], []byte{198, 18, 0, 1, 198, 18, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], ^csumFold(csumAdd(0, ip[:20])))
	}
	tcp := f[l3+ipLen:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 7)
	binary.BigEndian.PutUint32(tcp[4:], 0xfffff000) // wraps within the frame
	tcp[12] = 5 << 4
	tcp[13] = flags
	for i := range n {
		tcp[20+i] = byte(i*31 + 7)
	}
	return f
}

// valid checks the IP header checksum (IPv4) and the TCP checksum of a frame.
func valid(t *testing.T, f []byte, v6 bool) {
	t.Helper()
	ipLen := 20
	var sum uint64
	if v6 {
		ipLen = 40
		sum = csumAdd(0, f[14+8:14+40])
	} else {
		if c := csumFold(csumAdd(0, f[14:34])); c != 0xffff {
			t.Fatalf("IPv4 header checksum wrong (%#x)", c)
		}
		sum = csumAdd(0, f[14+12:14+20])
	}
	tcp := f[14+ipLen:]
	sum += 6 + uint64(len(tcp))
	if c := csumFold(csumAdd(sum, tcp)); c != 0xffff {
		t.Fatalf("TCP checksum wrong (%#x)", c)
	}
}

func TestSegmentTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := tcpFrame(v6, 2500, tcpFlagFIN|tcpFlagPSH|tcpFlagCWR|0x10)
		gt := uint8(gsoTCPv4)
		ipLen := 20
		if v6 {
			gt, ipLen = gsoTCPv6, 40
		}
		h := vnetHdr{flags: vnetNeedsCsum, gsoType: gt, gsoSize: 1000, csumStart: uint16(14 + ipLen), csumOffset: 16}
		s, ok := planSegments(h, f)
		if !ok || s.segs != 3 {
			t.Fatalf("v6=%v: plan %+v ok %v, want 3 segments", v6, s, ok)
		}
		var payload []byte
		for i := range s.segs {
			dst := make([]byte, 2048)
			n := segment(&s, f, i, dst)
			seg := dst[:n]
			valid(t, seg, v6)
			tcp := seg[14+ipLen:]
			if seq := binary.BigEndian.Uint32(tcp[4:]); seq != 0xfffff000+uint32(i*1000) {
				t.Errorf("segment %d seq %#x", i, seq)
			}
			last := i == s.segs-1
			if (tcp[13]&tcpFlagFIN != 0) != last || (tcp[13]&tcpFlagPSH != 0) != last || (tcp[13]&tcpFlagCWR != 0) != (i == 0) {
				t.Errorf("segment %d flags %#x", i, tcp[13])
			}
			if !v6 && binary.BigEndian.Uint16(seg[14+4:]) != 1000+uint16(i) {
				t.Errorf("segment %d IPv4 ID %d", i, binary.BigEndian.Uint16(seg[14+4:]))
			}
			payload = append(payload, tcp[20:]...)
		}
		if string(payload) != string(f[14+ipLen+20:]) {
			t.Errorf("v6=%v: the segments' payloads do not add up to the frame's", v6)
		}
		if n := segment(&s, f, 0, make([]byte, 100)); n != -1 {
			t.Errorf("segment into a short buffer returned %d, want -1", n)
		}
	}
}

func TestFinishChecksum(t *testing.T) {
	f := tcpFrame(false, 300, 0x18)
	tcp := f[34:]
	// What a sender with checksum offload leaves: the pseudo-header sum.
	ps := csumAdd(0, f[26:34]) + 6 + uint64(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], csumFold(ps))
	if !finishChecksum(f, 34, 16) {
		t.Fatal("finishChecksum refused a good frame")
	}
	valid(t, f, false)
	if finishChecksum(f, 34, len(f)) {
		t.Error("finishChecksum accepted an offset beyond the frame")
	}
}

func TestPlanRefuses(t *testing.T) {
	f := tcpFrame(false, 100, 0)
	for _, h := range []vnetHdr{
		{gsoType: 3, gsoSize: 50, csumStart: 34},             // UFO
		{gsoType: gsoTCPv4, gsoSize: 0, csumStart: 34},       // no MSS
		{gsoType: gsoTCPv4, gsoSize: 50, csumStart: 40},      // transport not after the IP header
		{gsoType: gsoTCPv6, gsoSize: 50, csumStart: 14 + 40}, // IPv4 frame called IPv6
	} {
		if _, ok := planSegments(h, f); ok {
			t.Errorf("planSegments accepted %+v", h)
		}
	}
}
