// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !linux

package tap

// Open creates a TAP device through water, the portable package: the
// batched, offloading device is Linux-only.
func Open(name string, o Options) (Device, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	d, err := openWater(name)
	if err != nil {
		return nil, explainOpen(name, err)
	}
	return d, nil
}
