package tap

import "github.com/songgao/water"

// On Windows a TAP adapter exists beforehand (tap-windows6); the name picks
// it by its friendly name in the Control Panel.
func setWaterName(cfg *water.Config, name string) { cfg.InterfaceName = name }
