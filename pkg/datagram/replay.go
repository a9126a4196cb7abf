// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package datagram

// The replay window is RFC 6479's: a ring of 64-bit blocks indexed by counter
// bits, where moving the window forward clears whole blocks instead of
// shifting a bitmap. One block is always being reused, so the window proper is
// (ringBlocks-1)*64 counters.
const (
	blockBits  = 64
	ringBlocks = 64 // a power of two
	// ReplayWindow is how far behind the newest counter a datagram may arrive
	// (reordered on the path) and still be accepted once.
	ReplayWindow = (ringBlocks - 1) * blockBits
)

// Window is one key epoch's anti-replay state. The zero Window accepts
// counter 0 first. It is not safe for concurrent use: one goroutine receives
// a session's datagrams.
type Window struct {
	last uint64 // highest counter accepted
	any  bool   // at least one counter accepted
	ring [ringBlocks]uint64
}

// Check reports whether ctr may be new. It does not record it: a datagram is
// recorded (Accept) only after it authenticates, so forged counters cannot
// move the window.
func (w *Window) Check(ctr uint64) bool {
	if !w.any || ctr > w.last {
		return true
	}
	if w.last-ctr >= ReplayWindow {
		return false
	}
	return w.ring[(ctr/blockBits)%ringBlocks]&(1<<(ctr%blockBits)) == 0
}

// Accept records ctr, reporting false if it was seen already (a duplicate
// that passed Check concurrently is impossible: one goroutine receives) or
// lies behind the window.
func (w *Window) Accept(ctr uint64) bool {
	if !w.Check(ctr) {
		return false
	}
	blk := ctr / blockBits
	if !w.any || ctr > w.last {
		cur := uint64(0)
		if w.any {
			cur = w.last / blockBits
		} else {
			cur = blk
			w.ring[blk%ringBlocks] = 0
		}
		// Clear the blocks the window moves over; past a whole ring
		// everything is cleared once.
		for i, n := cur+1, uint64(0); i <= blk && n < ringBlocks; i, n = i+1, n+1 {
			w.ring[i%ringBlocks] = 0
		}
		w.last, w.any = ctr, true
	}
	w.ring[blk%ringBlocks] |= 1 << (ctr % blockBits)
	return true
}
