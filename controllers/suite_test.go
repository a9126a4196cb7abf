// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hubfleet/hubfleet/internal/scheme"
	"github.com/hubfleet/hubfleet/internal/testenv"
)

// k8s is a direct (uncached) client to the test API server: tests see what
// the operator wrote, not a cache of it.
var k8s client.Client

// restConfig reaches the same API server, for tests that watch.
var restConfig *rest.Config

// TestMain runs one real kube-apiserver and one operator for the whole
// suite; each test works in its own namespace, so tests run in parallel.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if unitTestsOnly(flag.Lookup("test.run").Value.String()) {
		// The pure tests (TestUnit*, *_unit_test.go) need no control plane:
		// selected alone they run in a second, with no kube-apiserver to build
		// or start.
		return m.Run()
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()})))
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	restConfig = env.Config

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := Setup(mgr, Options{MemberImage: "hubfleet:test", OperatorNamespace: "hubfleet-system"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
	return code
}

// unitTestsOnly reports whether the -run pattern selects only unit tests:
// every alternative of its top level (before any subtest "/") starts with
// TestUnit or Unit. So "Unit" in a test's name is kept for tests that need no
// control plane. Anything else, including no pattern, starts the control plane.
func unitTestsOnly(pattern string) bool {
	top, _, _ := strings.Cut(pattern, "/")
	if top == "" || strings.ContainsAny(top, "()") {
		return false
	}
	for _, alt := range strings.Split(top, "|") {
		alt = strings.TrimPrefix(alt, "^")
		if !strings.HasPrefix(alt, "TestUnit") && !strings.HasPrefix(alt, "Unit") {
			return false
		}
	}
	return true
}

// testLogLevel keeps the operator quiet unless HUBFLEET_TEST_LOG is set.
func testLogLevel() slog.Level {
	if os.Getenv("HUBFLEET_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelError
}
