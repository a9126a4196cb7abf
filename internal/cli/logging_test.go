// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"strings"
	"testing"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

func parseLogFlags(t *testing.T, zap bool, args ...string) *logFlags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	lf := addLogFlags(fs, "info")
	if zap {
		lf.addZapLevelFlag(fs)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return lf
}

// --log-level decides what is written, a level slog does not know is refused
// naming the flag, and the deprecated --zap-log-level still works, with a
// warning, so an operator started by the previous release's chart runs.
func TestLogFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		zap       bool
		args      []string
		debug     bool   // a debug line is written
		v2        bool   // a logr V(2) line is written
		err, warn string // substrings of the error, of the first line
	}{
		{name: "default info", args: nil},
		{name: "debug", args: []string{"--log-level=debug"}, debug: true, v2: true},
		{name: "warn", args: []string{"--log-level", "warn"}},
		{name: "unknown level", args: []string{"--log-level=loud"}, err: `--log-level "loud": use debug, info, warn or error`},
		{name: "zap number", zap: true, args: []string{"--zap-log-level=2"}, v2: true, warn: "--zap-log-level is deprecated"},
		{name: "zap name", zap: true, args: []string{"--zap-log-level=debug"}, debug: true, v2: true, warn: "--zap-log-level is deprecated"},
		{name: "zap level slog lacks", zap: true, args: []string{"--zap-log-level=panic"}, err: `--zap-log-level "panic": use debug, info, warn or error`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := parseLogFlags(t, tc.zap, tc.args...).logger(&buf)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.warn != "" && !strings.Contains(buf.String(), tc.warn) {
				t.Errorf("no deprecation warning in %q", buf.String())
			}
			buf.Reset()
			l.Debug("debug line")
			if got := strings.Contains(buf.String(), "debug line"); got != tc.debug {
				t.Errorf("debug line written: %v; want %v", got, tc.debug)
			}
			buf.Reset()
			l.Log(context.Background(), -2, "v2 line")
			if got := strings.Contains(buf.String(), "v2 line"); got != tc.v2 {
				t.Errorf("V(2) line written: %v; want %v", got, tc.v2)
			}
		})
	}
}

// The operator's controller-runtime and client-go lines come out in the
// command's own format and level: JSON here, like its own lines.
func TestLogLibrariesUseTheCommandsFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := parseLogFlags(t, false, "--log-json").logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	logLibraries(l)
	t.Cleanup(func() { klog.ClearLogger() })
	ctrl.Log.WithName("operator").Info("from controller-runtime", "hubs", 3)
	ctrl.Log.V(1).Info("controller-runtime debug, below info")
	klog.InfoS("from client-go", "resource", "leases")
	klog.Flush()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (the V(1) line is below info):\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"from controller-runtime", "from client-go"} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, lines[i])
		}
		if rec["msg"] != want || rec["level"] != "INFO" {
			t.Errorf("line %d: %v; want msg %q at INFO", i, rec, want)
		}
	}
}
