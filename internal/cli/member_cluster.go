// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hubfleet/hubfleet/pkg/member/cluster"
)

// runMemberCluster is `hubfleet member --cluster NAME`: the member of a
// VPNCluster, configured from Kubernetes objects (docs/member-cluster.md)
// instead of a file. Its identity and files come from the pod environment the
// operator sets.
func runMemberCluster(name string, log *slog.Logger, grace time.Duration, metricsAddr string) int {
	id, err := cluster.IdentityFromEnv(name, os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member --cluster %s:\n%v\n", name, err)
		return ExitUsage
	}
	// The member's Kubernetes client and cache log through controller-runtime
	// and client-go.
	logLibraries(log)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member --cluster %s: no Kubernetes API configuration (in-cluster service account or KUBECONFIG): %v\n", name, err)
		return ExitError
	}
	m, err := cluster.New(cfg, id, cluster.Options{Logger: log, ShutdownTimeout: grace})
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member --cluster %s: %v\n", name, err)
		return ExitError
	}
	stopMetrics, err := serveMetrics(metricsAddr, m.Server(), m.MetricsOptions(), log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member --cluster %s: %v\n", name, err)
		return ExitError
	}
	defer stopMetrics()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process the default way
		log.Info("shutting down: telling clients to reconnect elsewhere", "timeout", grace)
	}()
	if err := m.Run(ctx); err != nil {
		log.Error("member stopped", "err", err)
		return ExitError
	}
	log.Info("member stopped")
	return ExitOK
}
