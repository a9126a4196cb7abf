// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package tap

import (
	"errors"
	"io/fs"
	"sync/atomic"

	"github.com/songgao/water"

	"github.com/hubfleet/hubfleet/pkg/ethdev"
	"github.com/hubfleet/hubfleet/pkg/gso"
)

// waterDevice is the portable TAP: one frame per read(2) or write(2), no
// offloads, one queue.
type waterDevice struct {
	ifce    *water.Interface
	seg     ethdev.Segmenter
	dropped atomic.Uint64
	txSplit atomic.Uint64
	closed  atomic.Bool
}

func openWater(name string) (Device, error) {
	cfg := water.Config{DeviceType: water.TAP}
	setWaterName(&cfg, name)
	ifce, err := water.New(cfg)
	if err != nil {
		return nil, err
	}
	return &waterDevice{ifce: ifce}, nil
}

func (d *waterDevice) Name() string            { return d.ifce.Name() }
func (d *waterDevice) MTU() int                { return linkMTU(d.ifce.Name()) }
func (d *waterDevice) BatchSize() int          { return 1 }
func (d *waterDevice) Offload() ethdev.Offload { return ethdev.Offload{} }

func (d *waterDevice) Stats() Stats {
	return Stats{TxSplit: d.txSplit.Load(), Dropped: d.dropped.Load()}
}

func (d *waterDevice) Close() error {
	d.closed.Store(true)
	return d.ifce.Close()
}

func (d *waterDevice) err(err error) error {
	if d.closed.Load() || errors.Is(err, fs.ErrClosed) {
		return ethdev.ErrClosed
	}
	return err
}

// Read reads one frame: water has no way to ask for more without blocking.
func (d *waterDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < gso.VirtioLen {
		return 0, ethdev.ErrOffset
	}
	for {
		b := bufs[0][offset:]
		n, err := d.ifce.Read(b)
		if err != nil {
			return 0, d.err(err)
		}
		// water reads with read(2), which cuts a longer frame to the buffer
		// and returns the buffer's length: a frame that fills the buffer may
		// have been cut, so it is dropped (buffers of MaxFrame make a frame
		// that fills them exactly impossible short of two VLAN tags on a
		// full-MTU frame).
		if n >= len(b) {
			d.dropped.Add(1)
			continue
		}
		clear(bufs[0][offset-gso.VirtioLen : offset])
		sizes[0] = n
		return 1, nil
	}
}

func (d *waterDevice) Write(bufs [][]byte, offset int) (int, error) {
	if offset < gso.VirtioLen {
		return 0, ethdev.ErrOffset
	}
	for i, b := range bufs {
		if len(b) <= offset {
			d.dropped.Add(1)
			continue
		}
		m := gso.ParseVirtio(b[offset-gso.VirtioLen : offset])
		if m.IsZero() {
			if _, err := d.ifce.Write(b[offset:]); err != nil {
				if d.closed.Load() {
					return i, ethdev.ErrClosed
				}
				d.dropped.Add(1)
			}
			continue
		}
		d.txSplit.Add(1)
		var werr error
		if !d.seg.Split(m, b[offset:], func(p []byte) {
			if _, err := d.ifce.Write(p[gso.VirtioLen:]); err != nil {
				if d.closed.Load() {
					werr = ethdev.ErrClosed
				} else {
					d.dropped.Add(1)
				}
			}
		}) {
			d.dropped.Add(1)
		}
		if werr != nil {
			return i, werr
		}
	}
	return len(bufs), nil
}
