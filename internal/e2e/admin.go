// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// HubfleetAdmin runs an administrator's command of the hubfleet binary
// (`hubfleet sessions`, `hubfleet disconnect`) against the local cluster:
// `hubfleet <cmd> --kubeconfig <the cluster's> args...`. It returns the
// combined output, and an error wrapping the exit status if it failed.
func HubfleetAdmin(cmd string, args ...string) (string, error) {
	if HubfleetBin == "" {
		return "", fmt.Errorf("the hubfleet binary is not set up: the test must run under e2e.Main (TestMain)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, HubfleetBin, append([]string{cmd, "--kubeconfig", kubeconfig}, args...)...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("hubfleet %s %s: %w: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
