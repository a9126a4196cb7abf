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
	"github.com/hubfleet/hubfleet/pkg/bridge"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
	"github.com/hubfleet/hubfleet/pkg/mesh"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/udpio"
)

// Listen is the member's VPN port (memberpod.PortVPN, container port `vpn`).
const Listen = memberpod.ListenVPN

// MeshPort is the member mesh's port (memberpod.PortMesh, container port
// `mesh`): static-hub links and relayed sessions between members.
const MeshPort = memberpod.MeshPortString

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
	// OpenBridge opens the LAN side of a local bridge (default bridge.Open;
	// tests give a fake LAN).
	OpenBridge func(iface string) (bridge.Device, error)
	// UDPConn replaces listening on Listen for UDP, and UDPAdvertise the
	// port then told to clients (default 0: the TCP port's number); tests.
	UDPConn      *udpio.Conn
	UDPAdvertise uint16
	// SessionRefresh is how often the counters of listed sessions are
	// rewritten when they changed (sessions.go); default 30s.
	SessionRefresh time.Duration
}

// Member is a member server driven by Kubernetes objects: one loop
// (loop.go) and the components it hands its plan to, each with its own lock.
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

	kick    chan struct{} // an object changed: a pass after the debounce
	urgent  chan struct{} // a pass at once: the fence, a death, a failed move
	renewed chan struct{} // a Lease renewal succeeded
	// flushes asks for a renewal now; the channel sent is closed once a
	// renewal that began after the request has been attempted (lease.go).
	flushes chan chan struct{}
	// reported is the load of the last renewal that succeeded.
	reported atomic.Pointer[memberlease.Load]
	serving  atomic.Bool // listening; cleared when Run begins to stop

	// Set by Run before any goroutine reads them.
	wide       bool      // hubs are read cluster-wide (hubNamespaces All/Selector)
	clusterUID types.UID // the VPNCluster's, owner of the Lease

	planner  *planner
	lease    *leaseState          // the own Lease and the fence (fence.go)
	view     atomic.Pointer[view] // where logins go (route.go)
	passes   *passes              // closed after each pass (loop.go)
	config   *serverConfig        // the server's applied configuration
	meshes   *meshState           // mesh peers and attached static hubs
	relays   *relaySet            // sessions relayed from here (relay.go)
	bridges  *singletons          // local bridges (bridge.go)
	dhcp     *singletons          // static hubs' DHCP servers (dhcp.go)
	secrets  *secretInformers     // user Secrets per namespace (secrets.go)
	failover *failover            // moving a dead peer's hubs (failover.go)
	loans    *loans               // licenses lent and borrowed (loans.go)
	sessions *sessionPublisher    // sessions into hub statuses (sessions.go)
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
	if opts.OpenBridge == nil {
		opts.OpenBridge = func(iface string) (bridge.Device, error) { return bridge.Open(iface, 0) }
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
		id: id, opts: opts, log: log, cs: cs, reader: reader, rest: cfg, peer: peer,
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), renewed: make(chan struct{}, 1),
		flushes: make(chan chan struct{}, 8),
		lease:   newLeaseState(id.LeaseDuration, log),
		passes:  newPasses(),
		relays:  newRelaySet(log),
	}
	m.planner = &planner{id: &m.id, base: base, peerAddr: opts.PeerAddr, interval: m.renewInterval()}
	m.view.Store(&view{})
	m.failover = newFailover(m)
	m.loans = newLoans(id.Name, log, &m.view)
	m.sessions = newSessionPublisher(id.Name, reader, log)
	if opts.SessionRefresh > 0 {
		m.sessions.refresh = opts.SessionRefresh
	}
	m.sessions.placed = func(h *vpnv1alpha1.VirtualHub) bool { placed, _ := m.id.placedHere(h); return placed }
	m.mesh = mesh.New(mesh.Options{Self: id.Name, TLS: meshTLS, Logger: log, OnLinkDown: m.failover.linkDown, OnCall: m.answerCall})
	m.srv, err = member.New(&base, member.Options{Logger: log, Route: m.route, Relay: m.relay, Known: m.known, Borrow: m.loans.borrow,
		UDPForward: meshUDP{m: m.mesh, tag: mesh.DatagramTag(id.Name), self: id.Name}, OnSessions: m.sessions.changed})
	if err != nil {
		return nil, err
	}
	m.sessions.srv = m.srv
	m.mesh.OnDatagrams(m.srv.ForwardedDatagrams)
	m.loans.mesh, m.loans.gate, m.loans.flush = m.mesh, m.srv.Gate(), m.flushLoad
	m.mesh.OnRelayedSession(m.srv.ServeRelayed)
	m.config = &serverConfig{srv: m.srv, log: log}
	m.meshes = newMeshState(m.mesh, m.srv, log)
	m.secrets = newSecretInformers(cs, log, m.poke)
	m.bridges = m.newBridges(opts.OpenBridge)
	m.dhcp = m.newDHCPServers()
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
// point when this one is full, out of licenses or clearly busier
// (routeTable.staticTarget). A member whose Lease expired relays nothing: its
// view of the placement may be stale, and a client that retries reaches a
// member that knows better; until it has re-read the placement (fence.go) it
// relays no dynamic hub.
func (m *Member) route(req *protocol.LoginRequest) (string, bool) {
	own := m.srv.Licenses()
	if m.lease.expired() {
		return "", false
	}
	v := m.view.Load()
	if owner, dynamic := v.routes.dynamic[req.Hub]; dynamic {
		// While resyncing after an expiry the dynamic placement is not
		// trusted either; static instances are on every member, and the
		// target only accepts a hub it serves, so those still route.
		if owner == m.id.Name || m.lease.fencedNow() {
			return "", false
		}
		_, peer := v.peers[owner]
		return owner, peer
	}
	if to := v.routes.staticTarget(m.id.Name, req.Hub, req.SessionKind(), own, v.peers); to != "" {
		return to, true
	}
	return "", false
}

// known answers member.Options.Known from the last route table: the hub
// exists in the cluster (the informers' view, kept with the operator down).
func (m *Member) known(hub string) bool { return m.view.Load().routes.known[hub] }

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
	return State{Fenced: m.lease.appliedFence(), LastRenew: m.lease.last(), Hubs: m.config.hubs()}
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
	m.clusterUID, m.wide = vc.UID, isWide(vc)
	c, err := m.newCache(m.wide)
	if err != nil {
		return err
	}
	cctx, stopCache := context.WithCancel(ctx)
	err = m.watch(cctx, c)
	var ln, mln net.Listener
	if err == nil {
		go func() { _ = c.Start(cctx) }()
		if !c.WaitForCacheSync(ctx) {
			err = fmt.Errorf("reading VirtualHubs and ConnectionLicenses: %w", ctx.Err())
		}
	}
	if err == nil {
		m.log.Info("informers synced", "hubNamespaces", vc.Spec.HubNamespaces.From, "pod_ip", m.id.IP)
		go m.renewLoop(ctx)
		go m.watchFiles(ctx)
		go m.failover.run(ctx)
		go func() { _ = m.sessions.run(ctx, c) }()
		wake := m.pass(ctx, c) // serve the known placement before accepting
		ln, mln, err = m.listen()
		if err == nil {
			err = m.serve(ctx, c, ln, mln, wake)
		}
	}
	m.secrets.close()
	stopCache()
	return err
}

// watch registers the informers' handlers: any change of a hub, license or
// the VPNCluster asks for a pass; of a member Lease only a claim or release
// (leaseTriggers), not the renewals.
func (m *Member) watch(ctx context.Context, c crcache.Cache) error {
	for _, obj := range []client.Object{&vpnv1alpha1.VirtualHub{}, &vpnv1alpha1.ConnectionLicense{}, &vpnv1alpha1.VPNCluster{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { m.poke() }, DeleteFunc: func(any) { m.poke() },
			UpdateFunc: func(o, n any) {
				if v, ok := n.(*vpnv1alpha1.VPNCluster); ok && isWide(v) != m.wide {
					m.log.Warn("hubNamespaces changed between Same and All/Selector: restart the member pods to watch the new namespaces", "from", v.Spec.HubNamespaces.From)
				}
				// Session entries (sessions.go) are nothing the plan reads;
				// while fenced every event counts (the resync waits for the
				// cache to catch up, fence.go).
				if oh, ok := o.(*vpnv1alpha1.VirtualHub); ok && !m.lease.fencedNow() && sessionsOnly(oh, n.(*vpnv1alpha1.VirtualHub)) {
					return
				}
				m.poke()
			},
		})
	}
	inf, err := c.GetInformer(ctx, &coordinationv1.Lease{})
	if err != nil {
		return err
	}
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { m.poke() }, DeleteFunc: func(any) { m.poke() },
		UpdateFunc: func(o, n any) {
			ol, ok1 := o.(*coordinationv1.Lease)
			nl, ok2 := n.(*coordinationv1.Lease)
			if ok1 && ok2 && leaseTriggers(ol, nl) {
				m.poke()
			}
		},
	})
	return nil
}

// listen opens the VPN and mesh ports (or takes the test's listeners);
// accepted connections wait for the fence to be applied (fence.go).
func (m *Member) listen() (net.Listener, net.Listener, error) {
	ln, mln := m.opts.Listener, m.opts.MeshListener
	var err error
	if ln == nil {
		if ln, err = net.Listen("tcp", Listen); err != nil {
			return nil, nil, fmt.Errorf("cannot listen on %s: %w", Listen, err)
		}
	}
	if mln == nil {
		if mln, err = net.Listen("tcp", ":"+MeshPort); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("cannot listen on :%s (mesh): %w", MeshPort, err)
		}
	}
	return gateListener{Listener: ln, m: m}, gateListener{Listener: mln, m: m}, nil
}

// serve accepts on both ports and runs the loop until ctx ends or the
// server fails; then it stops, in this order: local bridges (their sockets
// close before anything else), the mesh (static hubs' peer ports close
// before their switches, and no relay arrives any more), then the server,
// which tells its clients — relayed ones too — to reconnect elsewhere.
func (m *Member) serve(ctx context.Context, c crcache.Cache, ln, mln net.Listener, wake time.Duration) error {
	meshDone := make(chan struct{})
	go func() {
		defer close(meshDone)
		if err := m.mesh.Serve(mln); !errors.Is(err, mesh.ErrClosed) {
			m.log.Error("member mesh stopped accepting", "err", err)
		}
	}()
	udpDone := make(chan struct{})
	uc, advertise := m.listenUDP()
	go func() {
		defer close(udpDone)
		if uc != nil {
			m.serveUDP(uc, advertise)
		}
	}()
	served := make(chan error, 1)
	go func() { served <- m.srv.Serve(ln) }()
	m.log.Info("listening on "+ln.Addr().String(), "mesh", mln.Addr().String())
	m.serving.Store(true)

	err := m.loop(ctx, c, served, wake)

	m.serving.Store(false)
	m.bridges.close()
	m.dhcp.close()
	_ = m.mesh.Close()
	<-meshDone
	sctx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
	if serr := m.srv.Shutdown(sctx); serr != nil {
		m.log.Warn("shutdown timed out; remaining connections closed", "err", serr)
	}
	cancel()
	if uc != nil {
		uc.Close()
	}
	<-udpDone
	return err
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
// licenses in its namespace (cluster-wide with hubNamespaces All/Selector),
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
