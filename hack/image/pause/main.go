// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command pause is the sandbox ("pause") container of the local cluster: it holds a
// pod's namespaces open and does nothing else until it is told to stop. Kubernetes'
// own pause image is not reachable from these machines, so we build this one.
//
// When a pod shares its process namespace this process is PID 1, so it also reaps
// orphaned children (otherwise they would stay zombies for the life of the pod).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every child that has exited; WNOHANG so that a SIGCHLD coalesced
		// with others never blocks us.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
