// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Every command logs through log/slog with the same two flags and the same
// format, text or JSON lines on stderr. The operator and the in-cluster member
// also hand their logger to controller-runtime (logr.FromSlogHandler) and to
// client-go (klog), so the libraries' lines follow the same level and format
// instead of arriving in a second style.

// logFlags are --log-level and --log-json.
type logFlags struct {
	level string
	json  bool
	// deprecated names a deprecated flag that was used, for a warning once
	// the logger exists.
	deprecated string
}

func addLogFlags(fs *flag.FlagSet, defaultLevel string) *logFlags {
	f := &logFlags{level: defaultLevel}
	fs.StringVar(&f.level, "log-level", defaultLevel, "debug, info, warn or error")
	fs.BoolVar(&f.json, "log-json", false, "log JSON lines instead of text")
	return f
}

// addZapLevelFlag keeps --zap-log-level, the operator's flag before slog, for
// one release: charts and manifests of the previous release pass it, and an
// unknown flag would stop the operator from starting. A number n (zap's debug
// verbosity) becomes slog level -n, which is where logr's V(n) lines land.
func (f *logFlags) addZapLevelFlag(fs *flag.FlagSet) {
	fs.Func("zap-log-level", "deprecated: use --log-level", func(v string) error {
		f.deprecated = "--zap-log-level"
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			f.level = slog.Level(-n).String()
			return nil
		}
		f.level = v
		return nil
	})
}

// logger builds the command's logger, writing to w. A level slog does not
// know is the caller's usage error, named by flag.
func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.level)); err != nil {
		return nil, fmt.Errorf("%s %q: use debug, info, warn or error", cmp.Or(f.deprecated, "--log-level"), f.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if f.json {
		h = slog.NewJSONHandler(w, opts)
	}
	l := slog.New(h)
	if f.deprecated != "" {
		l.Warn(f.deprecated+" is deprecated and will be removed in the next release: use --log-level (and --log-json)", "log-level", level.String())
	}
	return l, nil
}

// logLibraries sends controller-runtime's and client-go's logs to l.
func logLibraries(l *slog.Logger) {
	ctrl.SetLogger(logr.FromSlogHandler(l.Handler()))
	klog.SetSlogLogger(l)
}
