// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/scheme"
	"github.com/hubfleet/hubfleet/pkg/hub"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/mesh"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// Listen is the member's VPN port (memberpod.PortVPN, container port `vpn`).
const Listen = ":8443"

// MeshPort is the member mesh's port (memberpod.PortMesh, container port
// `mesh`): static-hub links and relayed sessions between members.
const MeshPort = "8444"

// The sessions' keepalive and dead-peer timeout in cluster mode (sent to
// clients in the LoginResult). A frozen or cut-off member is noticed by its
// clients only through this silence, and their reconnect is what resumes
// traffic once the hub has moved (2–3 s after the fault: readiness probe or
// Lease), so a client should give up on the member no later than that: 2 s
// rather than the file-mode 3 s. Keepalives every 500 ms leave a quiet
// session four of them per window, so a delayed one (a busy node, a GC
// pause) does not end a healthy session; the cost is one small record per
// idle session per 500 ms each way.
const (
	SessionKeepalive   = 500 * time.Millisecond
	SessionDeadTimeout = 2 * time.Second
)

// Options are the parts of a cluster member that are not its identity.
type Options struct {
	Logger *slog.Logger
	// Listener replaces listening on Listen (tests use 127.0.0.1:0).
	Listener net.Listener
	// Debounce is how long a burst of object changes is gathered before the
	// configuration is recomputed (a change after a quiet period of this
	// long is applied at once); default 100ms.
	Debounce time.Duration
	// ShutdownTimeout bounds telling clients to reconnect when Run ends; default 10s.
	ShutdownTimeout time.Duration
	// MeshListener replaces listening on :MeshPort (tests use 127.0.0.1:0).
	MeshListener net.Listener
	// PeerAddr replaces "podIP:8444" as the mesh address of member (tests run
	// several members on one loopback address, each on its own port).
	PeerAddr func(member, podIP string) string
}

// Member is a member server driven by Kubernetes objects.
type Member struct {
	id     Identity
	opts   Options
	log    *slog.Logger
	srv    *member.Server
	mesh   *mesh.Mesh
	peer   *peerCert // the mesh certificate, reloaded on renewal (certs.go)
	cs     kubernetes.Interface
	reader client.Client // uncached: the VPNCluster read at start, resyncs, moves (failover.go)
	rest   *rest.Config
	base   member.Config

	kick     chan struct{} // an informer saw a change
	renewed  chan struct{} // a Lease renewal succeeded
	fenceNow chan struct{} // an accepted connection waits for the fence (fence.go)
	wide     bool          // hubs are read cluster-wide (hubNamespaces All/Selector)
	serving  atomic.Bool   // listening; cleared when Run begins to stop

	mu        sync.Mutex
	lastRenew time.Time // monotonic; zero before the first renewal
	fenced    bool      // as last applied
	// The resync after an expiry (fence.go): dynamic hubs stay fenced while
	// resync is set; epoch counts expiries, backRenewals the renewals since
	// the last one, fresh is the API read the cache must catch up with.
	resync        bool
	epoch         uint64
	backRenewals  int
	fresh         *freshRead
	lagging       string                    // last logged reason the cache is behind
	servesDynamic bool                      // the applied configuration has dynamic hubs
	relays        map[*activeRelay]struct{} // sessions relayed from here (relay.go)
	recomputed    chan struct{}             // closed (and replaced) after each recompute
	applied       *member.Config
	problems      string
	peers         map[string]string // mesh peers: member name -> address
	clusterUID    types.UID         // the VPNCluster's, owner of the Lease
	routes        routeTable        // where logins go (route.go)
	// attached are the static hubs' switches attached to the mesh, touched
	// only by recompute (one goroutine).
	attached map[string]*hub.Hub
	bridges  *memberBridges // local bridges (bridge.go), with their own lock
	failover *failover      // moving a dead peer's hubs (failover.go)
}

// New builds the member server (serving no hub yet) and the API clients.
func New(cfg *rest.Config, id Identity, opts Options) (*Member, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if id.LeaseDuration <= 0 {
		return nil, errors.New("member cluster mode: the lease duration must be positive")
	}
	log := opts.Logger.With("member", id.Name, "cluster", id.Namespace+"/"+id.Cluster)
	base := member.Config{
		Listen: Listen, CertFile: id.CertFile, KeyFile: id.KeyFile, CAFile: id.CAFile,
		TicketKeyFile: id.TicketKeyFile, Name: id.Name,
		KeepaliveInterval: member.Duration(SessionKeepalive), DeadTimeout: member.Duration(SessionDeadTimeout),
	}
	if opts.Listener != nil {
		base.Listen = opts.Listener.Addr().String()
	}
	peer, err := loadPeerCert(id.PeerCertFile, id.PeerKeyFile)
	if err != nil {
		return nil, err
	}
	meshTLS, err := loadPeerTLS(&id, peer)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	reader, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	m := &Member{
		id: id, opts: opts, log: log, cs: cs, reader: reader, rest: cfg, base: base, peer: peer,
		kick: make(chan struct{}, 1), renewed: make(chan struct{}, 1), fenced: true,
		fenceNow: make(chan struct{}, 1), recomputed: make(chan struct{}), resync: true,
		relays:   map[*activeRelay]struct{}{},
		bridges:  newMemberBridges(),
		attached: map[string]*hub.Hub{},
	}
	m.failover = newFailover(m)
	m.mesh = mesh.New(mesh.Options{Self: id.Name, TLS: meshTLS, Logger: log, OnLinkDown: m.failover.linkDown})
	m.srv, err = member.New(&base, member.Options{Logger: log, Route: m.route, Relay: m.relay, Known: m.known})
	if err != nil {
		return nil, err
	}
	m.mesh.OnRelayedSession(m.srv.ServeRelayed)
	return m, nil
}

// loadPeerTLS builds the mesh's mTLS configuration from the <cluster>-peer
// certificate: it is trusted under the cluster CA only, and dialled by the
// shared name HUBFLEET_PEER_NAME whatever the pod IP.
func loadPeerTLS(id *Identity, peer *peerCert) (*tls.Config, error) {
	caPEM, err := os.ReadFile(id.PeerCAFile)
	if err != nil {
		return nil, fmt.Errorf("member mesh CA (%s): %w", EnvPeerDir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("member mesh CA %s holds no PEM certificate", id.PeerCAFile)
	}
	conf, err := mesh.TLSConfig(*peer.get(), pool, id.PeerName)
	if err != nil {
		return nil, err
	}
	peer.use(conf)
	return conf, nil
}

// route answers member.Options.Route: a dynamic hub assigned to another
// member that is a mesh peer, or for a static hub the member with the best
// point when this one is full, out of licences or clearly busier
// (routeTable.staticTarget). A member whose Lease expired relays nothing: its
// view of the placement may be stale, and a client that retries reaches a
// member that knows better; until it has re-read the placement (fence.go) it
// relays no dynamic hub.
func (m *Member) route(req *protocol.LoginRequest) (string, bool) {
	own := m.srv.Licences()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.expiredLocked() {
		return "", false
	}
	if owner, dynamic := m.routes.dynamic[req.Hub]; dynamic {
		// While resyncing after an expiry the dynamic placement is not
		// trusted either; static instances are on every member, and the
		// target only accepts a hub it serves, so those still route.
		if owner == m.id.Name || m.fencedNowLocked() {
			return "", false
		}
		_, peer := m.peers[owner]
		return owner, peer
	}
	if to := m.routes.staticTarget(m.id.Name, req.Hub, req.Kind, own, m.peers); to != "" {
		return to, true
	}
	return "", false
}

// known answers member.Options.Known from the last route table: the hub
// exists in the cluster (the informers' view, kept with the operator down).
func (m *Member) known(hub string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.routes.known[hub]
}

// Server is the member server (for Stats).
func (m *Member) Server() *member.Server { return m.srv }

// State is what the member reports about itself.
type State struct {
	Fenced    bool      // dynamic hubs are not served: the Lease could not be renewed in time
	LastRenew time.Time // the start of the last successful renewal; zero if none
	Hubs      []string  // hubs served now
}

// State returns the current state.
func (m *Member) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := State{Fenced: m.fenced, LastRenew: m.lastRenew}
	if m.applied != nil {
		for _, h := range m.applied.Hubs {
			st.Hubs = append(st.Hubs, h.Name)
		}
	}
	return st
}

func (m *Member) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run watches the cluster's objects, serves, renews the Lease and fences,
// until ctx ends; then it tells every client to reconnect elsewhere and
// returns. Nothing here talks to the operator: with the operator down the
// informers keep the last placement and the member keeps admitting on it.
func (m *Member) Run(ctx context.Context) error {
	vc, err := m.getCluster(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.clusterUID = vc.UID
	m.mu.Unlock()
	wide := isWide(vc)
	m.wide = wide
	c, err := m.newCache(wide)
	if err != nil {
		return err
	}
	secrets := newSecretInformers(m.cs, m.log, m.poke)
	defer secrets.stopAll()
	cctx, stopCache := context.WithCancel(ctx)
	defer stopCache()
	for _, obj := range []client.Object{&vpnv1alpha1.VirtualHub{}, &vpnv1alpha1.ConnectionLicense{}, &vpnv1alpha1.VPNCluster{}} {
		inf, err := c.GetInformer(cctx, obj)
		if err != nil {
			return err
		}
		_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { m.poke() }, DeleteFunc: func(any) { m.poke() },
			UpdateFunc: func(_, n any) {
				if v, ok := n.(*vpnv1alpha1.VPNCluster); ok && isWide(v) != wide {
					m.log.Warn("hubNamespaces changed between Same and All/Selector: restart the member pods to watch the new namespaces", "from", v.Spec.HubNamespaces.From)
				}
				m.poke()
			},
		})
	}
	// Peers' Leases feed failover.go only, on its own timer: a renewal
	// (one per member per second) must not recompute the configuration.
	if _, err := c.GetInformer(cctx, &coordinationv1.Lease{}); err != nil {
		return err
	}
	go func() { _ = c.Start(cctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("reading VirtualHubs and ConnectionLicenses: %w", ctx.Err())
	}
	m.log.Info("informers synced", "hubNamespaces", vc.Spec.HubNamespaces.From, "pod_ip", m.id.IP)

	go m.renewLoop(ctx)
	go m.watchFiles(ctx)
	go m.failover.run(ctx, c)
	m.recompute(ctx, c, secrets) // serve the known placement before accepting
	ln := m.opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", Listen); err != nil {
			return fmt.Errorf("cannot listen on %s: %w", Listen, err)
		}
	}
	mln := m.opts.MeshListener
	if mln == nil {
		if mln, err = net.Listen("tcp", ":"+MeshPort); err != nil {
			ln.Close()
			return fmt.Errorf("cannot listen on :%s (mesh): %w", MeshPort, err)
		}
	}
	// Held connections wait for the fence to be applied (fence.go).
	ln, mln = gateListener{Listener: ln, m: m}, gateListener{Listener: mln, m: m}
	meshDone := make(chan struct{})
	go func() {
		defer close(meshDone)
		if err := m.mesh.Serve(mln); !errors.Is(err, mesh.ErrClosed) {
			m.log.Error("member mesh stopped accepting", "err", err)
		}
	}()
	served := make(chan error, 1)
	go func() { served <- m.srv.Serve(ln) }()
	m.log.Info("listening on "+ln.Addr().String(), "mesh", mln.Addr().String())
	m.serving.Store(true)

	err = m.loop(ctx, c, secrets, served)
	m.serving.Store(false)
	m.stopBridges() // local bridges first: their sockets close before anything else (bridge.go)
	// The mesh first: its links end (static hubs' peer ports close before
	// their switches do) and no relay arrives any more. Relayed sessions
	// already running are the server's, and Shutdown tells their clients.
	_ = m.mesh.Close()
	<-meshDone
	sctx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
	defer cancel()
	if serr := m.srv.Shutdown(sctx); serr != nil {
		m.log.Warn("shutdown timed out; remaining connections closed", "err", serr)
	}
	return err
}

// loop recomputes the configuration on a change (at once after a quiet
// period, else after a debounced burst of changes), at
// once when the fencing state flips, and after each renewal (which can lift
// the fence).
func (m *Member) loop(ctx context.Context, c crcache.Cache, secrets *secretInformers, served chan error) error {
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	fence := time.NewTimer(m.untilFence())
	defer fence.Stop()
	pending := false
	var last time.Time // the last recompute a kick caused
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return fmt.Errorf("member stopped serving: %w", err)
		case <-m.kick:
			// Leading edge: the first change after a quiet period (a hub
			// moved here in a failover) is applied at once; a burst that
			// follows is gathered for Debounce.
			switch {
			case pending:
			case time.Since(last) >= m.opts.Debounce:
				last = time.Now()
				m.recompute(ctx, c, secrets)
			default:
				pending = true
				debounce.Reset(m.opts.Debounce)
			}
		case <-debounce.C:
			pending = false
			last = time.Now()
			m.recompute(ctx, c, secrets)
		case <-m.renewed:
			m.resyncStep(ctx)
			m.recompute(ctx, c, secrets)
			fence.Reset(m.untilFence())
		case <-m.fenceNow:
			m.recompute(ctx, c, secrets)
		case <-fence.C:
			m.recompute(ctx, c, secrets)
			fence.Reset(m.untilFence())
		}
	}
}

// untilFence is how long until the Lease expires counted from the start of
// the last successful renewal, on the monotonic clock (an hour when already
// fenced: only a renewal lifts it, and that wakes the loop itself).
func (m *Member) untilFence() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastRenew.IsZero() {
		return time.Hour
	}
	if d := m.id.LeaseDuration - time.Since(m.lastRenew); d > 0 {
		return d
	}
	return time.Hour
}

// recompute builds the configuration from the informers and applies it if it
// differs from the one applied last.
func (m *Member) recompute(ctx context.Context, c crcache.Cache, secrets *secretInformers) {
	defer func() {
		m.mu.Lock()
		close(m.recomputed)
		m.recomputed = make(chan struct{})
		m.mu.Unlock()
	}()
	var hubs vpnv1alpha1.VirtualHubList
	var lics vpnv1alpha1.ConnectionLicenseList
	if err := c.List(ctx, &hubs); err != nil {
		m.log.Error("listing VirtualHubs from the cache", "err", err)
		return
	}
	if err := c.List(ctx, &lics); err != nil {
		m.log.Error("listing ConnectionLicenses from the cache", "err", err)
		return
	}
	in := inputs{secret: secrets.get}
	for i := range hubs.Items {
		in.hubs = append(in.hubs, &hubs.Items[i])
	}
	fenced := m.fenceState(in.hubs)
	in.fenced = fenced
	m.mu.Lock()
	wasFenced := m.fenced
	m.fenced = fenced
	m.mu.Unlock()
	for i := range lics.Items {
		in.licences = append(in.licences, &lics.Items[i])
	}
	r := desired(&m.id, m.base, in)
	secrets.ensure(r.secretNamespaces)
	vc := m.setPeers(ctx, c)
	routes := buildRoutes(&m.id, in.hubs, in.licences, vc)
	// Static hubs leaving the configuration leave the mesh before Apply
	// closes their switches.
	static := staticHubs(r.cfg)
	for name := range m.attached {
		if !static[name] {
			m.mesh.DetachHub(name)
			delete(m.attached, name)
		}
	}
	defer m.syncBridges(in.hubs, fenced) // after attachStatic and the Apply below (bridge.go)
	defer m.attachStatic()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes = routes
	m.endMovedRelaysLocked()
	if p := strings.Join(r.problems, "; "); p != m.problems {
		m.problems = p
		if p != "" {
			m.log.Warn("hub configuration problems", "problems", p)
		}
	}
	if fenced != wasFenced {
		if fenced {
			m.log.Warn("fenced: the member Lease was not renewed within its duration; dynamic hubs are no longer served so that no two members serve one", "lease_duration", m.id.LeaseDuration)
		} else {
			m.log.Info("Lease renewed: dynamic hubs placed here are served again")
		}
	}
	if m.applied != nil && reflect.DeepEqual(m.applied, r.cfg) {
		return
	}
	if err := m.srv.Apply(r.cfg); err != nil {
		// desired leaves out what Validate refuses, so this is a file problem
		// (certificate, ticket key): keep serving the previous configuration.
		m.log.Error("cannot apply the computed configuration; keeping the previous one", "err", err)
		return
	}
	m.applied = r.cfg
	m.servesDynamic = false
	for _, h := range r.cfg.Hubs {
		m.servesDynamic = m.servesDynamic || h.Type != member.HubStatic
	}
	m.log.Info("configuration applied", "hubs", len(r.cfg.Hubs), "fenced", fenced, "licences", licString(r.cfg.Licences))
}

// staticHubs are the names of cfg's static hubs.
func staticHubs(cfg *member.Config) map[string]bool {
	out := map[string]bool{}
	if cfg != nil {
		for _, h := range cfg.Hubs {
			if h.Type == member.HubStatic {
				out[h.Name] = true
			}
		}
	}
	return out
}

// attachStatic attaches to the mesh every static hub the applied
// configuration serves, once per switch (a hub removed and added again has a
// new one). The mesh shares a hub only with members that attached it too, so
// status.instances, which decides what each member serves, is all it needs.
func (m *Member) attachStatic() {
	m.mu.Lock()
	static := staticHubs(m.applied)
	m.mu.Unlock()
	for name := range static {
		h := m.srv.Hub(name)
		if h == nil || m.attached[name] == h {
			continue
		}
		m.mesh.AttachHub(name, h)
		m.attached[name] = h
	}
}

// setPeers gives the mesh the members listed in the VPNCluster's status
// (status.members[].podIP; a member without an IP yet is left out until it
// has one). SetPeers is idempotent and redials a changed address.
// It returns the VPNCluster read, nil when it could not be read.
func (m *Member) setPeers(ctx context.Context, c crcache.Cache) *vpnv1alpha1.VPNCluster {
	var vc vpnv1alpha1.VPNCluster
	if err := c.Get(ctx, types.NamespacedName{Namespace: m.id.Namespace, Name: m.id.Cluster}, &vc); err != nil {
		m.log.Error("reading the VPNCluster from the cache; mesh peers unchanged", "err", err)
		return nil
	}
	peers := map[string]string{}
	for _, ms := range vc.Status.Members {
		if ms.PodIP == "" || ms.Name == m.id.Name {
			continue
		}
		if m.opts.PeerAddr != nil {
			peers[ms.Name] = m.opts.PeerAddr(ms.Name, ms.PodIP)
		} else {
			peers[ms.Name] = net.JoinHostPort(ms.PodIP, MeshPort)
		}
	}
	m.mesh.SetPeers(peers)
	m.mu.Lock()
	changed := !reflect.DeepEqual(m.peers, peers)
	m.peers = peers
	m.mu.Unlock()
	if changed {
		m.log.Info("mesh peers", "peers", peers)
	}
	return &vc
}

func licString(l *member.Licences) string {
	if l == nil {
		return "unlimited"
	}
	return fmt.Sprintf("client %d, bridge %d", l.Client, l.Bridge)
}

func isWide(v *vpnv1alpha1.VPNCluster) bool {
	return v.Spec.HubNamespaces.From == vpnv1alpha1.NamespacesFromAll || v.Spec.HubNamespaces.From == vpnv1alpha1.NamespacesFromSelector
}

// getCluster reads the member's VPNCluster, retrying while the API server is
// unreachable: a member that starts during an API outage waits rather than
// crash-looping.
func (m *Member) getCluster(ctx context.Context) (*vpnv1alpha1.VPNCluster, error) {
	var vc vpnv1alpha1.VPNCluster
	key := types.NamespacedName{Namespace: m.id.Namespace, Name: m.id.Cluster}
	wait := 200 * time.Millisecond
	for {
		err := m.reader.Get(ctx, key, &vc)
		if err == nil {
			return &vc, nil
		}
		m.log.Warn("cannot read the VPNCluster yet; retrying", "vpncluster", key.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading VPNCluster %s: %w", key, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// newCache caches exactly what the member's RBAC lets it read: hubs and
// licences in its namespace (cluster-wide with hubNamespaces All/Selector),
// and its own VPNCluster by name (the Role grants it by resourceNames, which
// the API server allows for a list/watch with a metadata.name selector).
func (m *Member) newCache(wide bool) (crcache.Cache, error) {
	own := map[string]crcache.Config{m.id.Namespace: {}}
	scoped := crcache.ByObject{Namespaces: own}
	if wide {
		scoped = crcache.ByObject{}
	}
	return crcache.New(m.rest, crcache.Options{
		Scheme: scheme.New(),
		ByObject: map[client.Object]crcache.ByObject{
			&vpnv1alpha1.VirtualHub{}:        scoped,
			&vpnv1alpha1.ConnectionLicense{}: scoped,
			&vpnv1alpha1.VPNCluster{}: {
				Namespaces: own,
				Field:      fields.OneTermEqualSelector("metadata.name", m.id.Cluster),
			},
			&coordinationv1.Lease{}: {
				Namespaces: own,
				Label:      labels.SelectorFromSet(memberlease.Labels(m.id.Cluster)),
			},
		},
		// Only the kinds above are read; an accidental read of another kind
		// must fail loudly rather than start an informer RBAC would refuse.
		ReaderFailOnMissingInformer: true,
	})
}
