// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

import (
	"sync"
	"sync/atomic"
	"time"
)

// PathState is whether a session sends its frames over UDP.
type PathState uint8

const (
	// Probing: no probe answered yet (login, or after a path change); frames
	// go by TLS.
	Probing PathState = iota
	// Up: probes are answered; frames go by UDP.
	Up
	// Down: probes stopped being answered within the dead timeout; frames go
	// by TLS and probing goes on, so the session returns to UDP when the path
	// works again.
	Down
)

func (s PathState) String() string {
	switch s {
	case Probing:
		return "probing"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "?"
}

// PathConfig are a path's timers and bounds.
type PathConfig struct {
	// Interval between liveness probes. Each side probes and each answers,
	// so each side knows both directions work: a side that only heard the
	// other's keepalives could not tell that its own datagrams are lost.
	Interval time.Duration
	// Dead: a path whose probes have gone unanswered this long is Down.
	Dead time.Duration
	// MaxSize is the largest datagram size searched (an interface's MTU less
	// IP and UDP headers); MinDatagram is always assumed.
	MaxSize int
	// ProbeTimeout: a size probe unanswered this long is lost.
	ProbeTimeout time.Duration
	// Research: how often a completed size search starts again, to find a
	// path MTU that grew (RFC 8899's PMTU_RAISE_TIMER is 600 s).
	Research time.Duration
}

// DefaultPathConfig: fallback within Dead+Interval (under the 3 s the issue
// asks), return within one Interval of the path working again.
func DefaultPathConfig() PathConfig {
	return PathConfig{Interval: 500 * time.Millisecond, Dead: 2 * time.Second, MaxSize: 1472,
		ProbeTimeout: time.Second, Research: 10 * time.Minute}
}

// maxSizeProbes is RFC 8899's MAX_PROBES: a size is too big once this many
// probes of it went unanswered.
const maxSizeProbes = 3

// Probe is a datagram the path wants sent: a Probe of Size bytes with ID.
type Probe struct {
	ID   uint32
	Size int
}

// Path decides, for one side of a session, whether frames go by UDP and at
// what datagram size: liveness probes and their answers move it between
// Probing, Up and Down, and a DPLPMTUD search (RFC 8899: probes of growing
// size, a size confirmed by its answer, lost after three misses) finds the
// largest datagram the path carries. It is a pure state machine: the caller
// sends what Tick asks for and reports answers with OnAck. Safe for
// concurrent use; Up and Size are cheap (the writer asks per batch).
type Path struct {
	cfg PathConfig

	mu       sync.Mutex
	state    PathState
	lastAck  time.Time // last liveness or size answer
	lastLive time.Time // last liveness probe sent
	nextID   uint32
	// Size search: lo is confirmed, hi is the largest size not yet ruled out.
	lo, hi     int
	probeID    uint32 // the size probe in flight (0: none)
	probeSize  int
	probeSent  time.Time
	misses     int
	triedTop   bool
	searchDone time.Time
	changes    uint64
	since      time.Time

	// found: a search ended since the last reset.
	found bool

	up   atomic.Bool
	size atomic.Int64
	plan atomic.Int64
}

// NewPath starts Probing at now.
func NewPath(cfg PathConfig, now time.Time) *Path {
	d := DefaultPathConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.Dead <= cfg.Interval {
		cfg.Dead = max(d.Dead, 3*cfg.Interval)
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = d.MaxSize
	}
	cfg.MaxSize = min(max(cfg.MaxSize, MinDatagram), MaxDatagram)
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = d.ProbeTimeout
	}
	if cfg.Research <= 0 {
		cfg.Research = d.Research
	}
	p := &Path{cfg: cfg, since: now, nextID: 1}
	p.resetSearch()
	return p
}

func (p *Path) resetSearch() {
	p.lo, p.hi = MinDatagram, p.cfg.MaxSize
	p.probeID, p.misses, p.triedTop = 0, 0, false
	p.searchDone = time.Time{}
	p.found = false
	p.size.Store(MinDatagram)
	p.plan.Store(int64(p.hi))
}

// PlanSize is the datagram size to plan TCP segments for (ClampMSS): the
// largest size not ruled out while the first search runs, which is what
// most paths turn out to carry, then the size the search found. Frames
// planned for a size the path then does not carry are cut smaller, as
// without planning.
func (p *Path) PlanSize() int { return int(p.plan.Load()) }

// updatePlan keeps PlanSize current (mu held).
func (p *Path) updatePlan() {
	if p.found {
		p.plan.Store(p.size.Load())
	} else {
		p.plan.Store(int64(p.hi))
	}
}

// Up reports whether frames should go by UDP now.
func (p *Path) Up() bool { return p.up.Load() }

// Size is the largest datagram the path is known to carry.
func (p *Path) Size() int { return int(p.size.Load()) }

// State is the current state, how many times it changed and since when.
func (p *Path) State() (PathState, uint64, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.changes, p.since
}

func (p *Path) set(s PathState, now time.Time) {
	if p.state == s {
		return
	}
	p.state, p.since = s, now
	p.changes++
	p.up.Store(s == Up)
}

func (p *Path) id() uint32 {
	id := p.nextID
	p.nextID++
	if p.nextID == 0 {
		p.nextID = 1
	}
	return id
}

// Tick advances the path to now and returns the probes to send (at most
// two: a liveness probe and a size probe) into out. Call it at least every
// NextTick.
func (p *Path) Tick(now time.Time, out *[2]Probe) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	if p.state == Up && now.Sub(p.lastAck) >= p.cfg.Dead {
		p.set(Down, now)
		// The path may come back smaller (a new route, a new NAT); the
		// search starts again from the size every path carries.
		p.resetSearch()
	}
	if now.Sub(p.lastLive) >= p.cfg.Interval {
		p.lastLive = now
		out[n] = Probe{ID: p.id(), Size: Overhead + 4}
		n++
	}
	if p.state != Up {
		return n
	}
	if p.probeID != 0 && now.Sub(p.probeSent) >= p.cfg.ProbeTimeout {
		p.probeID = 0
		p.misses++
		if p.misses >= maxSizeProbes {
			p.hi, p.misses = p.probeSize-1, 0
		}
	}
	if p.probeID == 0 && p.searchDone.IsZero() && p.hi-p.lo < 8 && p.triedTop {
		p.searchDone, p.found = now, true
	}
	if !p.searchDone.IsZero() && now.Sub(p.searchDone) >= p.cfg.Research {
		p.hi, p.searchDone, p.triedTop = p.cfg.MaxSize, time.Time{}, false
	}
	if p.probeID == 0 && p.searchDone.IsZero() {
		size := p.probeSize // a lost probe is sent again, up to maxSizeProbes
		switch {
		case p.misses > 0:
		case !p.triedTop:
			// Most paths carry their interface's MTU: try the top first,
			// then halve the gap.
			size, p.triedTop = p.hi, true
		default:
			size = (p.lo + p.hi + 1) / 2
		}
		p.probeID, p.probeSize, p.probeSent = p.id(), size, now
		out[n] = Probe{ID: p.probeID, Size: size}
		n++
	}
	p.updatePlan()
	return n
}

// OnAck records an answer to probe id of size bytes, received at now.
func (p *Path) OnAck(now time.Time, id uint32, size int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastAck = now
	if p.state != Up {
		p.set(Up, now)
	}
	if id != 0 && id == p.probeID && size == p.probeSize {
		p.probeID, p.misses = 0, 0
		p.lo = max(p.lo, size)
		if int(p.size.Load()) < size {
			p.size.Store(int64(size))
		}
		p.updatePlan()
	}
}

// NextTick is how long until Tick has something to do, at most.
func (p *Path) NextTick() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.cfg.Interval
	if p.state == Up && p.searchDone.IsZero() {
		d = min(d, p.cfg.ProbeTimeout/4)
	}
	return d
}
