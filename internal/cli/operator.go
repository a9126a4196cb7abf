// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hubfleet/hubfleet/controllers"
	"github.com/hubfleet/hubfleet/internal/scheme"
	"github.com/hubfleet/hubfleet/pkg/version"
)

func init() {
	Register(Command{Name: "operator", Summary: "run the operator (a leader-elected controller manager)", Run: runOperator})
}

func runOperator(args []string) int {
	fs := newFlagSet("operator", Help{
		Usage: "hubfleet operator --member-image IMAGE [flags]",
		About: "Runs the operator: the controller manager that reconciles VPNClusters,\n" +
			"VirtualHubs and ConnectionLicenses. It reaches Kubernetes through the pod's\n" +
			"ServiceAccount, or KUBECONFIG outside a cluster.",
		Examples: []string{
			"hubfleet operator --member-image ghcr.io/hubfleet/hubfleet:v0.1.0 --leader-elect",
			"HUBFLEET_MEMBER_IMAGE=hubfleet:dev KUBECONFIG=~/.kube/config hubfleet operator   # from a workstation",
		},
	})
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	leaderElect := fs.Bool("leader-elect", false, "elect a leader, so that several operator replicas can run with one active")
	leaderNS := fs.String("leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader-election Lease (default: the pod's namespace)")
	memberImage := fs.String("member-image", os.Getenv("HUBFLEET_MEMBER_IMAGE"), "image of member pods when a VPNCluster sets no spec.image (env HUBFLEET_MEMBER_IMAGE)")
	lf := addLogFlags(fs, "info")
	lf.addZapLevelFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	sl, err := lf.logger(os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet operator: %v\n", err)
		return ExitUsage
	}
	logLibraries(sl)
	log := ctrl.Log.WithName("operator")
	if *memberImage == "" {
		fmt.Fprintln(os.Stderr, "hubfleet operator: no member image: set --member-image or HUBFLEET_MEMBER_IMAGE to the image member pods should run")
		return ExitUsage
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet operator: cannot reach Kubernetes: %v (in a pod this comes from the ServiceAccount; outside, set KUBECONFIG)\n", err)
		return ExitError
	}
	// One member failure rewrites ~100 hub statuses at once; client-go's default 5 QPS would take 20 s.
	cfg.QPS, cfg.Burst = 500, 1000
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "hubfleet-operator.vpn.hubfleet.io",
		LeaderElectionNamespace: *leaderNS,
		// The new leader takes over at once when the old one steps down cleanly.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		log.Error(err, "cannot create the controller manager")
		return ExitError
	}
	if err := controllers.Setup(mgr, controllers.Options{MemberImage: *memberImage, OperatorNamespace: *leaderNS}); err != nil {
		log.Error(err, "cannot set up the reconcilers")
		return ExitError
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "cannot add the health check")
		return ExitError
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "cannot add the readiness check")
		return ExitError
	}
	log.Info("starting", "version", version.Version, "memberImage", *memberImage, "leaderElection", *leaderElect)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped with an error")
		return ExitError
	}
	return ExitOK
}
