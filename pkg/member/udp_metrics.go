// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubfleet/hubfleet/pkg/datagram"
)

// udpDescs are the UDP data channel's series; they exist while the member
// serves UDP.
type udpDescs struct {
	sessions, datagrams, rejected, sendErrors, forwarded, coalesced *prometheus.Desc
}

func newUDPDescs(d func(name, help string, labels ...string) *prometheus.Desc) udpDescs {
	return udpDescs{
		sessions:   d("udp_sessions", "Sessions with the UDP data channel, by the state of their path as this member sees it: up (frames by UDP), down (fallen back to TLS, probing) or probing (no probe answered yet).", "path"),
		datagrams:  d("udp_datagrams_total", "UDP datagrams of sessions received (in, authenticated) and sent (out): frames, probes and answers.", "direction"),
		rejected:   d("udp_rejected_total", "UDP datagrams dropped, by reason: replay (seen already or older than the window), auth (did not authenticate: wrong key, altered, unknown epoch), unknown_session, malformed (too short, or a frame batch that does not parse).", "reason"),
		sendErrors: d("udp_send_errors_total", "UDP datagrams the socket refused to send."),
		coalesced:  d("udp_coalesced_total", "TCP segments from sessions' datagrams that this member joined back into super-frames before its hub (segments), and the super-frames they made (super_frames): segments / super_frames is the mean run.", "kind"),
		forwarded:  d("udp_forwarded_total", "UDP datagrams of other members' sessions (cluster mode, over the member mesh): to_owner, received here and forwarded to the session's member; to_client, sent from here for the session's member; lost, not taken by the mesh (no link of version 3, or its queue full).", "direction"),
	}
}

func (u udpDescs) describe(ch chan<- *prometheus.Desc) {
	ch <- u.sessions
	ch <- u.datagrams
	ch <- u.rejected
	ch <- u.sendErrors
	ch <- u.forwarded
	ch <- u.coalesced
}

// collect reports the UDP series of srv, none while it does not serve UDP.
func (u udpDescs) collect(srv *Server, ch chan<- prometheus.Metric) {
	us := srv.udp.Load()
	if us == nil {
		return
	}
	var states [3]int
	us.mu.RLock()
	for _, s := range us.byID {
		st, _, _ := s.path.State()
		if int(st) < len(states) {
			states[st]++
		}
	}
	us.mu.RUnlock()
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(u.sessions, prometheus.GaugeValue, float64(n), datagram.PathState(st).String())
	}
	c := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	c(u.datagrams, us.rx.Load(), "in")
	c(u.datagrams, us.tx.Load(), "out")
	c(u.rejected, us.rxReplay.Load(), "replay")
	c(u.rejected, us.rxBad.Load(), "auth")
	c(u.rejected, us.unknown.Load(), "unknown_session")
	c(u.rejected, us.malformed.Load(), "malformed")
	c(u.sendErrors, us.txErr.Load())
	c(u.forwarded, us.fwdToOwner.Load(), "to_owner")
	c(u.forwarded, us.fwdToClient.Load(), "to_client")
	c(u.forwarded, us.fwdErr.Load(), "lost")
	c(u.coalesced, us.joined.Load(), "segments")
	c(u.coalesced, us.built.Load(), "super_frames")
}
