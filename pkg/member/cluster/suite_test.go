// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/testenv"
	"github.com/hubfleet/hubfleet/pkg/auth"
	"github.com/hubfleet/hubfleet/pkg/certs"
	"github.com/hubfleet/hubfleet/pkg/protocol"
	"github.com/hubfleet/hubfleet/pkg/udpio"

	"github.com/hubfleet/hubfleet/internal/testutil"
)

// One real kube-apiserver for the package; each test works in its own namespace.
var (
	env *testenv.Env
	k8s client.Client
)

func TestMain(m *testing.M) {
	e, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env, k8s = e, e.Client
	code := m.Run()
	_ = e.Stop()
	os.Exit(code)
}

func bg() context.Context { return context.Background() }

// eventually polls fn until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: %v", within, what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(bg(), obj); err != nil {
		t.Fatal(err)
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "m-"}}
	create(t, ns)
	return ns.Name
}

// fixture is a namespace with a VPNCluster "vpn" (3 s leases) and a user
// Secret "users" (alice/alice-pw, bob/bob-pw, cheap argon2id parameters).
func fixture(t *testing.T) string {
	t.Helper()
	ns := newNamespace(t)
	create(t, &vpnv1alpha1.VPNCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"},
		Spec:       vpnv1alpha1.VPNClusterSpec{Members: 2, Failover: vpnv1alpha1.FailoverSpec{LeaseDurationSeconds: 3}},
	})
	data := map[string][]byte{}
	for _, u := range []string{"alice", "bob"} {
		h, err := auth.HashPasswordWith(u+"-pw", auth.Params{Memory: 64, Time: 1, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		data[u] = []byte(h)
	}
	data["mallory"] = []byte("not-a-phc") // left out with a problem, the rest still served
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users"}, Data: data})
	return ns
}

func newHub(t *testing.T, ns, name string, typ vpnv1alpha1.HubType) {
	t.Helper()
	create(t, &vpnv1alpha1.VirtualHub{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: vpnv1alpha1.VirtualHubSpec{
			ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, Type: typ,
			Users: &vpnv1alpha1.UsersSpec{SecretName: "users"},
		},
	})
}

// setStatus patches a hub's status as the operator would (no operator runs here).
func setStatus(t *testing.T, ns, name string, st vpnv1alpha1.VirtualHubStatus) {
	t.Helper()
	h := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	patch := client.RawPatch("application/merge-patch+json", mustJSON(t, map[string]any{"status": st}))
	if err := k8s.Status().Patch(bg(), h, patch); err != nil {
		t.Fatal(err)
	}
}

// runner is a cluster member running in-process on a loopback port.
type runner struct {
	m      *Member
	addr   string
	client *tls.Config
	stop   func() // ends Run (its listeners close, as when the process dies); idempotent
}

// startMember runs member name of cluster "vpn" in ns with rc (env.Config,
// or a wrapped copy) until the test ends, with a mesh of its own on a
// loopback port and no peer reachable.
func startMember(t *testing.T, ns, name string, rc *rest.Config) *runner {
	t.Helper()
	peerDir := t.TempDir()
	writePeerPKI(t, peerDir)
	return startMemberWith(t, ns, name, rc, meshSetup{peerDir: peerDir, ln: loopbackListener(t)})
}

// meshSetup is a member's mesh in a test: the peer certificate directory
// (shared by the members of one test), its loopback listener, and the mesh
// addresses of the other members.
type meshSetup struct {
	peerDir  string
	ln       net.Listener
	peerAddr func(member, podIP string) string
	// udp, if set, is the member's UDP socket, and udpAdvertise the port it
	// tells clients (udp_test.go); without, the member serves no UDP.
	udp          *udpio.Conn
	udpAdvertise uint16
	// sessionRefresh is Options.SessionRefresh (0: the default).
	sessionRefresh time.Duration
}

func loopbackListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// writePeerPKI writes a cluster CA and the shared peer certificate
// "vpn-member" into dir, as the operator's <cluster>-peer Secret.
func writePeerPKI(t *testing.T, dir string) {
	t.Helper()
	ca, err := certs.NewCA("hubfleet test cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.IssuePeer("vpn-member", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tls.crt"), kp.CertPEM)
	writeFile(t, filepath.Join(dir, "tls.key"), kp.KeyPEM)
	writeFile(t, filepath.Join(dir, "ca.crt"), caPEM)
}

func startMemberWith(t *testing.T, ns, name string, rc *rest.Config, ms meshSetup) *runner {
	t.Helper()
	dir := t.TempDir()
	pool := writePKI(t, dir)
	key := filepath.Join(dir, "ticket.key")
	writeFile(t, key, []byte("0123456789abcdef0123456789abcdef"))
	env := map[string]string{
		EnvPodName: name, EnvPodNamespace: ns, EnvPodIP: "127.0.0.1",
		EnvLeaseDuration: "3", EnvTLSDir: dir, EnvTicketKey: key,
		EnvPeerDir: ms.peerDir, EnvPeerName: "vpn-member",
	}
	id, err := IdentityFromEnv("vpn", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(rc, id, Options{
		Logger: testLogger(t), Listener: ln, ShutdownTimeout: 2 * time.Second,
		MeshListener: ms.ln, PeerAddr: ms.peerAddr, OpenBridge: openFakeLAN,
		UDPConn: ms.udp, UDPAdvertise: ms.udpAdvertise, SessionRefresh: ms.sessionRefresh,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	ct, err := protocol.ClientTLSConfig(protocol.ClientTLSOptions{CAPool: pool})
	if err != nil {
		t.Fatal(err)
	}
	return &runner{m: m, addr: ln.Addr().String(), client: ct, stop: stop}
}

func writePKI(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	pki := testutil.NewPKI(t)
	pki.WriteServer(t, dir)
	return pki.Pool
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// session is a logged-in client whose reader reports how the session ended.
type session struct {
	conn *protocol.Conn
	end  chan error
}

// login tries one password login as a client (user-pw is the password).
func (r *runner) login(hub, user string) (*session, error) {
	ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
	defer cancel()
	conn, _, err := protocol.Dial(ctx, r.addr, r.client, protocol.LoginRequest{Hub: hub, User: user, Password: user + "-pw", Kind: protocol.KindClient})
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, end: make(chan error, 1)}
	go func() { _ = conn.RunKeepalive(bg()) }()
	go func() {
		for {
			if _, err := conn.ReadFrames(func([]byte) {}); err != nil {
				s.end <- err
				return
			}
		}
	}()
	return s, nil
}

// mustLogin waits until a login succeeds (the member acts on informer events).
func (r *runner) mustLogin(t *testing.T, hub, user string) *session {
	t.Helper()
	var s *session
	eventually(t, 15*time.Second, "login to "+hub+" as "+user, func() (err error) {
		s, err = r.login(hub, user)
		return err
	})
	t.Cleanup(func() { s.conn.Close() })
	return s
}

// refusedWith waits until a login is refused with one of codes.
func (r *runner) refusedWith(t *testing.T, hub, user string, codes ...protocol.Code) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("login to %s refused with %v", hub, codes), func() error {
		s, err := r.login(hub, user)
		if err == nil {
			s.conn.Close()
			return errors.New("login succeeded")
		}
		le, ok := errors.AsType[*protocol.LoginError](err)
		if !ok {
			return err
		}
		for _, c := range codes {
			if le.Code == c {
				return nil
			}
		}
		return fmt.Errorf("refused with %v: %s", le.Code, le.Message)
	})
}

// shutDown waits for s to end with a protocol Shutdown.
func (s *session) shutDown(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-s.end:
		if !errors.Is(err, protocol.ErrShutdown) {
			t.Fatalf("session ended with %v, want a Shutdown", err)
		}
	case <-time.After(within):
		t.Fatalf("session still open after %v", within)
	}
}
