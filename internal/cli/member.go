package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hubfleet/hubfleet/pkg/member"
)

func init() {
	Register(Command{Name: "member", Summary: "run a member server (VPN sessions and Virtual Hubs)", Run: runMember})
}

func runMember(args []string) int {
	fs := flag.NewFlagSet("member", flag.ContinueOnError)
	configPath := fs.String("config", "", "member configuration file, YAML or JSON (docs/member-config.md); reloaded when it changes")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "on SIGTERM/SIGINT, how long to wait for clients to be told to reconnect before closing hard")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "hubfleet member: give the configuration file: hubfleet member --config member.yaml")
		return ExitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member: --log-level %q: use debug, info, warn or error\n", *logLevel)
		return ExitUsage
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logJSON {
		handler = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(handler)

	path, err := filepath.Abs(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet member: %v\n", err)
		return ExitUsage
	}
	cfg, err := member.LoadConfig(path)
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
		fmt.Fprintf(os.Stderr, "hubfleet member: cannot listen on %s: %v (is another process using the port? change listen in %s)\n", cfg.Listen, err, path)
		return ExitError
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	w, err := newReloader(path, srv, log)
	if err != nil {
		log.Error("cannot watch the configuration; changes need a restart", "err", err)
	} else {
		defer w.close()
		go w.run(ctx)
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

// reloader re-applies the configuration when the file, or a file it names, changes.
// It watches directories, not files: an editor's atomic rename and a ConfigMap's
// symlink swap replace the file, and a watch on the old inode would see nothing.
type reloader struct {
	path    string
	srv     *member.Server
	log     *slog.Logger
	w       *fsnotify.Watcher
	watched map[string]bool
	files   *member.Config    // the last good config, for the files it names
	seen    [sha256.Size]byte // digest of the config and its files when last read
}

// settle is how long events must stop before reloading, so a burst (write,
// chmod, rename; or a ConfigMap update of several files) reloads once.
const settle = 200 * time.Millisecond

func newReloader(path string, srv *member.Server, log *slog.Logger) (*reloader, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	r := &reloader{path: path, srv: srv, log: log, w: w, watched: map[string]bool{}}
	cfg, err := member.LoadConfig(path)
	if err != nil {
		cfg = &member.Config{}
	}
	r.files = cfg
	r.seen = digest(path, cfg)
	if err := r.watch(cfg); err != nil {
		w.Close()
		return nil, err
	}
	return r, nil
}

func (r *reloader) close() { r.w.Close() }

// watch adds the directories of the config and of the files it names.
func (r *reloader) watch(cfg *member.Config) error {
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

func (r *reloader) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-r.w.Events:
			if !ok {
				return
			}
			r.log.Debug("configuration directory changed", "event", ev.String())
			timer.Reset(settle)
		case err, ok := <-r.w.Errors:
			if !ok {
				return
			}
			r.log.Warn("watching the configuration", "err", err)
		case <-timer.C:
			r.reload()
		}
	}
}

func (r *reloader) reload() {
	// Events also come for unrelated files in the same directories; only a change
	// of content is acted on, and a bad file is reported once, not per event.
	d := digest(r.path, r.files)
	if d == r.seen {
		return
	}
	r.seen = d
	cfg, err := member.LoadConfig(r.path)
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
func digest(path string, cfg *member.Config) [sha256.Size]byte {
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
