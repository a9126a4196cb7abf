// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/pkg/version"
)

// TestChartFollowsProjectVersion: the chart's version and appVersion are the
// project's version (pkg/version, which `make build` stamps from git), so the
// chart installs the operator image of its own release by default.
func TestChartFollowsProjectVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir(), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Version, AppVersion string }
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.AppVersion != "v"+c.Version {
		t.Errorf("Chart.yaml appVersion %q is not v + version %q", c.AppVersion, c.Version)
	}
	// Unstamped builds are "<next release>-dev".
	if base, _, _ := strings.Cut(version.Version, "-"); base != c.AppVersion {
		t.Errorf("pkg/version says %s but Chart.yaml appVersion %s: bump them together", version.Version, c.AppVersion)
	}
}
