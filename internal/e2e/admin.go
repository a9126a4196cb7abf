// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// HubfleetAdmin runs an administrator's command of the hubfleet binary
// (`hubfleet sessions`, `hubfleet disconnect`) against the local cluster:
// `hubfleet <cmd> --kubeconfig <the cluster's> args...`. It returns its
// stdout, or stdout and stderr with an error wrapping the exit status if it
// failed.
func HubfleetAdmin(cmd string, args ...string) (string, error) {
	if HubfleetBin == "" {
		return "", fmt.Errorf("the hubfleet binary is not set up: the test must run under e2e.Main (TestMain)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, HubfleetBin, append([]string{cmd, "--kubeconfig", kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		out := stdout.String() + stderr.String()
		return out, fmt.Errorf("hubfleet %s %s: %w: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return stdout.String(), nil
}
