// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

func init() {
	Register(Command{Name: "member", Summary: "run a member server (VPN sessions and Virtual Hubs)", Run: runMember})
}

func runMember(args []string) int {
	fs := newFlagSet("member", Help{
		Usage: "hubfleet member --config FILE [flags]\n       hubfleet member --cluster NAME [flags]",
		About: "Runs a member server: it terminates VPN sessions (TLS, ALPN hubfleet/1) and\n" +
			"switches frames between the sessions of each Virtual Hub. With --config it serves\n" +
			"the hubs of a file (docs/member-config.md) and reloads the file when it changes;\n" +
			"with --cluster it is a member pod of a VPNCluster, configured from Kubernetes.",
		Examples: []string{
			"hubfleet member --config member.yaml",
			"hubfleet member --config /etc/hubfleet/member.yaml --log-json --metrics-bind-address 127.0.0.1:9090",
			"hubfleet member --cluster vpn   # in a pod the operator created",
		},
	})
	configPath := fs.String("config", "", "member configuration file, YAML or JSON (docs/member-config.md); reloaded when it changes")
	lf := addLogFlags(fs, "info")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "on SIGTERM/SIGINT, how long to wait for clients to be told to reconnect before closing hard")
	clusterName := fs.String("cluster", "", "run as a member of this VPNCluster, configured from Kubernetes (docs/member-cluster.md) instead of --config")
	metricsAddr := fs.String("metrics-bind-address", ":9090", "address of the Prometheus metrics (/metrics) and /healthz endpoint (docs/metrics.md); 0 disables it")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if (*configPath == "") == (*clusterName == "") || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "hubfleet member: give the configuration file (hubfleet member --config member.yaml) or, in a pod, the cluster (--cluster NAME)")
		return ExitUsage
	}
	log, err := lf.logger(os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member: %v\n", err)
		return ExitUsage
	}
	if soft := setMemoryLimitFromCgroup(os.Getenv, os.ReadFile); soft > 0 {
		log.Info("soft memory limit set from the container's memory limit", "bytes", soft)
	}
	if *clusterName != "" {
		return runMemberCluster(*clusterName, log, *grace, *metricsAddr)
	}

	path, err := filepath.Abs(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member: %v\n", err)
		return ExitUsage
	}
	cfg, err := member.LoadConfig(path, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member: %v\n", err)
		return ExitError
	}
	srv, err := member.New(cfg, member.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member: %v\n", err)
		return ExitError
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member: cannot listen on %s: %v: %s\n", cfg.Listen, err, listenFix(err, "listen in "+path))
		return ExitError
	}
	stopMetrics, err := serveMetrics(*metricsAddr, srv, member.MetricsOptions{}, log)
	if err != nil {
		ln.Close()
		fmt.Fprintf(os.Stderr, "hubfleet member: %v\n", err)
		return ExitError
	}
	defer stopMetrics()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	w, err := member.NewConfigWatcher(path, srv, log)
	if err != nil {
		log.Error("cannot watch the configuration; changes need a restart", "err", err)
	} else {
		defer w.Close()
		go w.Run(ctx)
	}
	if uaddr, advertise, ok := member.UDPAddr(cfg); ok {
		// A UDP socket that cannot be opened costs the clients their UDP
		// path, not their sessions: they stay on TLS.
		if uc, err := udpio.Listen("udp", uaddr); err != nil {
			log.Error("cannot listen on UDP; sessions stay on TLS", "addr", uaddr, "err", err, "fix", listenFix(err, "udpListen in "+path))
		} else {
			defer uc.Close()
			go func() {
				if err := srv.ServeUDP(uc, advertise); err != nil {
					log.Error("UDP data channel stopped; sessions fall back to TLS", "err", err)
				}
			}()
		}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		log.Error("member stopped serving", "err", err)
		return ExitError
	case <-ctx.Done():
	}
	stop() // a second signal now kills the process the default way
	log.Info("shutting down: telling clients to reconnect elsewhere", "timeout", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out; remaining connections closed", "err", err)
	}
	if err := <-served; !errors.Is(err, member.ErrServerClosed) {
		log.Warn("listener ended with an error", "err", err)
	}
	log.Info("member stopped")
	return ExitOK
}

// serveMetrics serves member.MetricsHandler on addr ("0" or "": not at all)
// until the returned stop is called.
func serveMetrics(addr string, srv *member.Server, opts member.MetricsOptions, log *slog.Logger) (stop func(), err error) {
	if addr == "" || addr == "0" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for metrics: %w: %s, or 0 to serve no metrics", addr, err, listenFix(err, "--metrics-bind-address"))
	}
	hs := &http.Server{Handler: member.MetricsHandler(srv, opts), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("serving metrics on " + ln.Addr().String() + "/metrics")
	return func() { _ = hs.Close() }, nil
}

// listenFix says how to get past a net.Listen error; where names the setting
// to change. Only a port in use suggests another process: an address that is
// not this host's or a privileged port has other causes and other fixes.
func listenFix(err error, where string) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "another process is using the port: stop it, or change " + where
	case errors.Is(err, syscall.EACCES):
		return "ports below 1024 need root or CAP_NET_BIND_SERVICE: use a port from 1024 up in " + where
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "the address is not one of this host's: use one it has, or none (like :8443) for all, in " + where
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
		return "the host name does not resolve: use an IP address of this host, or none (like :8443) for all, in " + where
	}
	return "change " + where
}
