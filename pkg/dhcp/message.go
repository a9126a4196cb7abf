// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// MessageType is the DHCP message type (option 53, RFC 2132 9.6).
type MessageType uint8

// Message types.
const (
	Discover MessageType = 1
	Offer    MessageType = 2
	Request  MessageType = 3
	Decline  MessageType = 4
	Ack      MessageType = 5
	Nak      MessageType = 6
	Release  MessageType = 7
	Inform   MessageType = 8
)

func (t MessageType) String() string {
	names := [...]string{"", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// BOOTP op codes and the broadcast flag (RFC 2131 2).
const (
	OpRequest     = 1
	OpReply       = 2
	FlagBroadcast = 0x8000
)

// Option codes this package reads or writes (RFC 2132).
const (
	optPad         = 0
	optSubnetMask  = 1
	optRouter      = 3
	optDNS         = 6
	optHostName    = 12
	optRequestedIP = 50
	optLeaseTime   = 51
	optOverload    = 52
	optMsgType     = 53
	optServerID    = 54
	optParamList   = 55
	optMessage     = 56
	optMaxSize     = 57
	optT1          = 58
	optT2          = 59
	optClientID    = 61
	optEnd         = 255
)

const (
	fixedLen    = 236 // op .. file, before the magic cookie
	magicCookie = 0x63825363
	// minLen is the BOOTP message size some relays and old clients insist
	// on (RFC 1542 2.1); replies are padded to it.
	minLen = 300
)

// Message is a DHCPv4 message with the options this server and client use.
// Only Ethernet hardware addresses are supported (htype 1, hlen 6): the hub
// is an Ethernet switch.
type Message struct {
	Op     uint8
	XID    uint32
	Secs   uint16
	Flags  uint16
	CIAddr netip.Addr // zero Addr: 0.0.0.0
	YIAddr netip.Addr
	SIAddr netip.Addr
	GIAddr netip.Addr
	CHAddr [6]byte

	Type        MessageType
	SubnetMask  netip.Addr
	Routers     []netip.Addr
	DNS         []netip.Addr
	LeaseTime   time.Duration // 0: absent; whole seconds on the wire
	T1, T2      time.Duration
	ServerID    netip.Addr
	RequestedIP netip.Addr
	ClientID    []byte
	ParamList   []byte
	HostName    string
	Text        string // option 56, why a NAK was sent
	MaxSize     uint16
}

// Errors of Parse.
var (
	ErrShort    = errors.New("dhcp: message shorter than 240 bytes")
	ErrCookie   = errors.New("dhcp: no DHCP magic cookie")
	ErrHardware = errors.New("dhcp: hardware address is not Ethernet (htype 1, hlen 6)")
	ErrOption   = errors.New("dhcp: malformed option")
	ErrNoType   = errors.New("dhcp: no message type option (a BOOTP message)")
	ErrOverload = errors.New("dhcp: options overloaded into sname/file are not supported")
)

// Parse decodes a DHCP message (the UDP payload). The message's slices
// (ClientID, ParamList) are copies: b may be reused afterwards.
func Parse(b []byte) (*Message, error) {
	if len(b) < fixedLen+4 {
		return nil, ErrShort
	}
	if binary.BigEndian.Uint32(b[fixedLen:]) != magicCookie {
		return nil, ErrCookie
	}
	if b[1] != 1 || b[2] != 6 {
		return nil, ErrHardware
	}
	m := &Message{
		Op:     b[0],
		XID:    binary.BigEndian.Uint32(b[4:]),
		Secs:   binary.BigEndian.Uint16(b[8:]),
		Flags:  binary.BigEndian.Uint16(b[10:]),
		CIAddr: addr4(b[12:]),
		YIAddr: addr4(b[16:]),
		SIAddr: addr4(b[20:]),
		GIAddr: addr4(b[24:]),
	}
	copy(m.CHAddr[:], b[28:34])
	opts := b[fixedLen+4:]
	for len(opts) > 0 {
		code := opts[0]
		if code == optEnd {
			break
		}
		if code == optPad {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return nil, ErrOption
		}
		v := opts[2 : 2+int(opts[1])]
		opts = opts[2+len(v):]
		if err := m.setOption(code, v); err != nil {
			return nil, err
		}
	}
	if m.Type == 0 {
		return nil, ErrNoType
	}
	return m, nil
}

func (m *Message) setOption(code byte, v []byte) error {
	one := func(dst *netip.Addr) error {
		if len(v) != 4 {
			return fmt.Errorf("%w: option %d has %d bytes, want 4", ErrOption, code, len(v))
		}
		*dst = addr4(v)
		return nil
	}
	list := func(dst *[]netip.Addr) error {
		if len(v) == 0 || len(v)%4 != 0 {
			return fmt.Errorf("%w: option %d has %d bytes, want a multiple of 4", ErrOption, code, len(v))
		}
		*dst = (*dst)[:0]
		for i := 0; i < len(v); i += 4 {
			*dst = append(*dst, addr4(v[i:]))
		}
		return nil
	}
	secs := func(dst *time.Duration) error {
		if len(v) != 4 {
			return fmt.Errorf("%w: option %d has %d bytes, want 4", ErrOption, code, len(v))
		}
		*dst = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
		return nil
	}
	switch code {
	case optMsgType:
		if len(v) != 1 || v[0] == 0 {
			return fmt.Errorf("%w: message type", ErrOption)
		}
		m.Type = MessageType(v[0])
	case optSubnetMask:
		return one(&m.SubnetMask)
	case optRouter:
		return list(&m.Routers)
	case optDNS:
		return list(&m.DNS)
	case optRequestedIP:
		return one(&m.RequestedIP)
	case optServerID:
		return one(&m.ServerID)
	case optLeaseTime:
		return secs(&m.LeaseTime)
	case optT1:
		return secs(&m.T1)
	case optT2:
		return secs(&m.T2)
	case optClientID:
		if len(v) < 2 {
			return fmt.Errorf("%w: client identifier shorter than 2 bytes", ErrOption)
		}
		m.ClientID = append([]byte(nil), v...)
	case optParamList:
		m.ParamList = append([]byte(nil), v...)
	case optHostName:
		m.HostName = string(v)
	case optMessage:
		m.Text = string(v)
	case optMaxSize:
		if len(v) != 2 {
			return fmt.Errorf("%w: maximum message size", ErrOption)
		}
		m.MaxSize = binary.BigEndian.Uint16(v)
	case optOverload:
		return ErrOverload
	}
	return nil
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

func put4(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
	}
}

// Append appends the encoded message to b. Options are written in the
// order RFC 2131 readers expect (message type first) and the message is
// padded to the BOOTP minimum of 300 bytes.
func (m *Message) Append(b []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, fixedLen+4)...)
	h := b[start:]
	h[0], h[1], h[2] = m.Op, 1, 6
	binary.BigEndian.PutUint32(h[4:], m.XID)
	binary.BigEndian.PutUint16(h[8:], m.Secs)
	binary.BigEndian.PutUint16(h[10:], m.Flags)
	put4(h[12:], m.CIAddr)
	put4(h[16:], m.YIAddr)
	put4(h[20:], m.SIAddr)
	put4(h[24:], m.GIAddr)
	copy(h[28:], m.CHAddr[:])
	binary.BigEndian.PutUint32(h[fixedLen:], magicCookie)

	b = append(b, optMsgType, 1, byte(m.Type))
	addr := func(code byte, a netip.Addr) {
		if a.Is4() {
			v := a.As4()
			b = append(b, code, 4, v[0], v[1], v[2], v[3])
		}
	}
	addrs := func(code byte, as []netip.Addr) {
		n := 0
		for _, a := range as {
			if a.Is4() {
				n++
			}
		}
		if n == 0 || n > 63 {
			return
		}
		b = append(b, code, byte(4*n))
		for _, a := range as {
			if a.Is4() {
				v := a.As4()
				b = append(b, v[:]...)
			}
		}
	}
	secs := func(code byte, d time.Duration) {
		if d > 0 {
			b = append(b, code, 4)
			b = binary.BigEndian.AppendUint32(b, uint32(min(d/time.Second, 0xffffffff)))
		}
	}
	bytesOpt := func(code byte, v []byte) {
		if len(v) > 0 {
			v = v[:min(len(v), 255)]
			b = append(b, code, byte(len(v)))
			b = append(b, v...)
		}
	}
	addr(optServerID, m.ServerID)
	addr(optRequestedIP, m.RequestedIP)
	secs(optLeaseTime, m.LeaseTime)
	secs(optT1, m.T1)
	secs(optT2, m.T2)
	addr(optSubnetMask, m.SubnetMask)
	addrs(optRouter, m.Routers)
	addrs(optDNS, m.DNS)
	bytesOpt(optClientID, m.ClientID)
	bytesOpt(optParamList, m.ParamList)
	bytesOpt(optHostName, []byte(m.HostName))
	bytesOpt(optMessage, []byte(m.Text))
	if m.MaxSize > 0 {
		b = append(b, optMaxSize, 2)
		b = binary.BigEndian.AppendUint16(b, m.MaxSize)
	}
	b = append(b, optEnd)
	for len(b)-start < minLen {
		b = append(b, optPad)
	}
	return b
}
