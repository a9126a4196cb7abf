//go:build !windows

package tap

import "github.com/songgao/water"

func setWaterName(cfg *water.Config, name string) { cfg.Name = name }
