// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

//go:build !windows

package tap

import "github.com/songgao/water"

func setWaterName(cfg *water.Config, name string) { cfg.Name = name }
