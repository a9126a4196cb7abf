// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package tap

import "github.com/songgao/water"

// On Windows a TAP adapter exists beforehand (tap-windows6); the name picks
// it by its friendly name in the Control Panel.
func setWaterName(cfg *water.Config, name string) { cfg.InterfaceName = name }
