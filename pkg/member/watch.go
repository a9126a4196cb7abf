// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package member

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ConfigWatcher re-applies a configuration file to a Server when the file, or a file
// it names, changes.
// It watches directories, not files: an editor's atomic rename and a ConfigMap's
// symlink swap replace the file, and a watch on the old inode would see nothing.
type ConfigWatcher struct {
	path    string
	srv     *Server
	log     *slog.Logger
	w       *fsnotify.Watcher
	watched map[string]bool
	files   *Config           // the last good config, for the files it names
	seen    [sha256.Size]byte // digest of the config and its files when last read
}

// settle is how long events must stop before reloading, so a burst (write,
// chmod, rename; or a ConfigMap update of several files) reloads once.
const settle = 200 * time.Millisecond

// NewConfigWatcher watches path (as given: a symlink is followed on every read) and
// the files its current contents name. The watches are in place when it returns.
func NewConfigWatcher(path string, srv *Server, log *slog.Logger) (*ConfigWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	r := &ConfigWatcher{path: path, srv: srv, log: log, w: w, watched: map[string]bool{}}
	cfg, err := LoadConfig(path, nil) // the caller warned about this file already
	if err != nil {
		cfg = &Config{}
	}
	r.files = cfg
	r.seen = digest(path, cfg)
	if err := r.watch(cfg); err != nil {
		w.Close()
		return nil, err
	}
	return r, nil
}

// Close stops watching; Run returns.
func (r *ConfigWatcher) Close() error { return r.w.Close() }

// watch adds the directories of the config and of the files it names.
func (r *ConfigWatcher) watch(cfg *Config) error {
	for _, f := range []string{r.path, cfg.CertFile, cfg.KeyFile, cfg.TicketKeyFile} {
		if f == "" {
			continue
		}
		dir := filepath.Dir(f)
		if r.watched[dir] {
			continue
		}
		if err := r.w.Add(dir); err != nil {
			return fmt.Errorf("watching %s: %w", dir, err)
		}
		r.watched[dir] = true
	}
	return nil
}

// Run reloads on changes until ctx ends or Close. A file that does not load or
// validate is logged once and the previous configuration keeps serving.
func (r *ConfigWatcher) Run(ctx context.Context) {
	Settled(ctx, r.w, r.log, "the configuration", r.reload)
}

// Settled calls fire each time events on w have stopped for a moment (a
// burst — write, chmod, rename; or a Secret or ConfigMap update of several
// files — fires once), until ctx ends or w is closed. what names the watched
// files in log messages.
func Settled(ctx context.Context, w *fsnotify.Watcher, log *slog.Logger, what string, fire func()) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			log.Debug("watched directory changed", "files", what, "event", ev.String())
			timer.Reset(settle)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("watching "+what, "err", err)
		case <-timer.C:
			fire()
		}
	}
}

func (r *ConfigWatcher) reload() {
	// Events also come for unrelated files in the same directories; only a change
	// of content is acted on, and a bad file is reported once, not per event.
	d := digest(r.path, r.files)
	if d == r.seen {
		return
	}
	r.seen = d
	cfg, err := LoadConfig(r.path, r.log)
	if err == nil {
		err = r.srv.Apply(cfg)
	}
	if err != nil {
		r.log.Error("new configuration rejected; still serving the previous one", "err", err)
		return
	}
	r.files = cfg
	r.seen = digest(r.path, cfg)
	if err := r.watch(cfg); err != nil {
		r.log.Warn("cannot watch a file the new configuration names; its changes need a restart", "err", err)
	}
	r.log.Info("configuration reloaded", "hubs", len(cfg.Hubs))
}

// digest covers the config file and the files it names, so a certificate
// renewal in place reloads too.
func digest(path string, cfg *Config) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range []string{path, cfg.CertFile, cfg.KeyFile, cfg.TicketKeyFile} {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}
