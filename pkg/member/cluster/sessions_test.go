// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// idLogin logs in at r (retrying while the member learns the hub) and
// returns the session and its id as the status lists it.
func idLogin(t *testing.T, r *runner, hub, user string) (*session, string) {
	t.Helper()
	var s *session
	var id string
	eventually(t, 20*time.Second, "login to "+hub+" as "+user, func() error {
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		conn, res, err := protocol.Dial(ctx, r.addr, r.client, protocol.LoginRequest{Hub: hub, User: user, Password: user + "-pw", Kind: protocol.KindClient})
		if err != nil {
			return err
		}
		s, id = &session{conn: conn, end: make(chan error, 1)}, member.SessionID(res.SessionID)
		return nil
	})
	go func() { _ = s.conn.RunKeepalive(bg()) }()
	go func() {
		for {
			if _, err := s.conn.ReadFrames(func([]byte) {}); err != nil {
				s.end <- err
				return
			}
		}
	}()
	t.Cleanup(func() { s.conn.Close() })
	return s, id
}

// shutDownWith waits for s to end with a Shutdown giving reason.
func (s *session) shutDownWith(t *testing.T, reason string) {
	t.Helper()
	select {
	case err := <-s.end:
		if se, ok := errors.AsType[*protocol.ShutdownError](err); !ok || se.Reason != reason {
			t.Fatalf("session ended with %v, want Shutdown %q", err, reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("session still open after 10s, want Shutdown %q", reason)
	}
}

func getHub(ns, name string) (*vpnv1alpha1.VirtualHub, error) {
	h := &vpnv1alpha1.VirtualHub{}
	return h, k8s.Get(bg(), types.NamespacedName{Namespace: ns, Name: name}, h)
}

// listedAre checks a hub's listed sessions: id → member, user.
func listedAre(ns, name string, want map[string][2]string) error {
	h, err := getHub(ns, name)
	if err != nil {
		return err
	}
	got := map[string][2]string{}
	for _, s := range h.Status.SessionList {
		got[s.ID] = [2]string{s.Member, s.User}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("sessionList %v, want %v", got, want)
	}
	reports := map[string]int32{}
	for _, r := range h.Status.SessionReports {
		if r.Listed != r.Sessions {
			return fmt.Errorf("report %+v: listed != sessions", r)
		}
		reports[r.Member] += r.Sessions
	}
	per := map[string]int32{}
	for _, mu := range want {
		per[mu[0]]++
	}
	if fmt.Sprint(reports) != fmt.Sprint(per) {
		return fmt.Errorf("sessionReports %v, want %v", reports, per)
	}
	return nil
}

// The two members of a static hub each list the session they serve in the
// hub's status, with their own field manager, without overwriting each
// other; the disconnect annotation ends exactly the named session (Shutdown
// "disconnected by an administrator") and its entry goes; removing a user
// from the users Secret ends that user's session and its entry goes.
func TestSessionsInHubStatus(t *testing.T) {
	ns := fixture(t)
	twoMembersWithIPs(t, ns)
	both := []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}, {Member: "vpn-member-1"}}
	newHub(t, ns, "lan", vpnv1alpha1.HubStatic)
	setStatus(t, ns, "lan", vpnv1alpha1.VirtualHubStatus{Instances: both})
	m0, m1 := meshPairWith(t, ns, func(_ string, rt http.RoundTripper) http.RoundTripper { return rt })
	lan := ns + "/lan"

	began := time.Now().Add(-time.Second)
	alice, aliceID := idLogin(t, m0, lan, "alice")
	bob, bobID := idLogin(t, m1, lan, "bob")
	// Each served where it logged in (equal load: no relay).
	if l, _ := m0.m.Server().Sessions(lan); len(l) != 1 || l[0].ID != aliceID {
		t.Fatalf("m0 serves %+v, want alice's session only", l)
	}
	want := map[string][2]string{aliceID: {"vpn-member-0", "alice"}, bobID: {"vpn-member-1", "bob"}}
	eventually(t, 10*time.Second, "both sessions listed", func() error { return listedAre(ns, "lan", want) })

	h, _ := getHub(ns, "lan")
	for _, s := range h.Status.SessionList {
		if s.Kind != "client" || !strings.HasPrefix(s.Source, "127.0.0.1:") || s.Since.Time.Before(began) ||
			s.LastUpdated.IsZero() || s.Since.Time.After(s.LastUpdated.Time) {
			t.Errorf("entry %+v", s)
		}
	}
	managers := map[string]bool{}
	for _, mf := range h.ManagedFields {
		if mf.Subresource == "status" {
			managers[mf.Manager] = true
		}
	}
	if !managers["hubfleet-member/vpn-member-0"] || !managers["hubfleet-member/vpn-member-1"] {
		t.Errorf("status managers %v, want one per member", managers)
	}

	// Disconnect alice (and an id nobody has).
	h.Annotations = map[string]string{vpnv1alpha1.AnnotationDisconnect: "ffffffffffffffffffffffffffffffff," + aliceID}
	if err := k8s.Update(bg(), h); err != nil {
		t.Fatal(err)
	}
	alice.shutDownWith(t, member.ReasonDisconnected)
	delete(want, aliceID)
	eventually(t, 10*time.Second, "alice's entry gone, bob's kept", func() error { return listedAre(ns, "lan", want) })
	select {
	case err := <-bob.end:
		t.Fatalf("bob's session ended: %v", err)
	default:
	}

	// Remove bob from the users Secret.
	sec := &corev1.Secret{}
	if err := k8s.Get(bg(), client.ObjectKey{Namespace: ns, Name: "users"}, sec); err != nil {
		t.Fatal(err)
	}
	delete(sec.Data, "bob")
	if err := k8s.Update(bg(), sec); err != nil {
		t.Fatal(err)
	}
	bob.shutDownWith(t, member.ReasonUserRemoved)
	eventually(t, 10*time.Second, "no session listed", func() error { return listedAre(ns, "lan", map[string][2]string{}) })
	// alice, still a user, logs in again: a new id, listed.
	_, again := idLogin(t, m0, lan, "alice")
	if again == aliceID {
		t.Fatal("a new login kept the disconnected session's id")
	}
	eventually(t, 10*time.Second, "alice's new session listed", func() error {
		return listedAre(ns, "lan", map[string][2]string{again: {"vpn-member-0", "alice"}})
	})
}

// A member that restarts under the same name removes the entries its
// earlier process left (it died without removing them).
func TestSessionsLeftByEarlierProcessRemoved(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	// The earlier process's entry, applied with the member's field manager.
	p := newSessionPublisher("vpn-member-0", k8s, testLogger(t))
	now := metav1.Now()
	if err := p.apply(bg(), ns, "dyn", statusApply{
		SessionList:    []vpnv1alpha1.HubSession{{ID: "0123456789abcdef0123456789abcdef", User: "alice", Kind: "client", Member: "vpn-member-0", Since: now, LastUpdated: now}},
		SessionReports: []vpnv1alpha1.SessionReport{{Member: "vpn-member-0", Sessions: 1, Listed: 1, LastUpdated: now}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := listedAre(ns, "dyn", map[string][2]string{"0123456789abcdef0123456789abcdef": {"vpn-member-0", "alice"}}); err != nil {
		t.Fatal(err)
	}
	r := startMember(t, ns, "vpn-member-0", env.Config)
	eventually(t, 10*time.Second, "stale entry removed", func() error { return listedAre(ns, "dyn", map[string][2]string{}) })
	_, id := idLogin(t, r, ns+"/dyn", "alice")
	eventually(t, 10*time.Second, "new session listed", func() error {
		return listedAre(ns, "dyn", map[string][2]string{id: {"vpn-member-0", "alice"}})
	})
}

func TestSessionCap(t *testing.T) {
	for members, want := range map[int]int{0: 500, 1: 500, 2: 500, 3: 333, 10: 100, 40: 50} {
		if got := sessionCap(members); got != want {
			t.Errorf("sessionCap(%d) = %d, want %d", members, got, want)
		}
	}
}

// statusWrites counts a member's PATCHes of virtualhubs/status.
type statusWrites struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (w *statusWrites) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch && strings.Contains(req.URL.Path, "/virtualhubs/") && strings.HasSuffix(req.URL.Path, "/status") {
		w.n.Add(1)
	}
	return w.next.RoundTrip(req)
}

// A burst of logins and one of logouts are a few status writes, not one per
// session: a change is written a second after the first one (debounced).
func TestSessionWritesDebounced(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	w := &statusWrites{}
	rc := rest.CopyConfig(env.Config)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { w.next = rt; return w }
	r := startMember(t, ns, "vpn-member-0", rc)
	dyn := ns + "/dyn"
	_, first := idLogin(t, r, dyn, "alice") // the member serves the hub now
	eventually(t, 10*time.Second, "first session listed", func() error {
		return listedAre(ns, "dyn", map[string][2]string{first: {"vpn-member-0", "alice"}})
	})
	before := w.n.Load()

	const n = 20
	began := time.Now()
	want := map[string][2]string{first: {"vpn-member-0", "alice"}}
	var all []*session
	for i := range n {
		user := []string{"alice", "bob"}[i%2]
		s, id := idLogin(t, r, dyn, user)
		want[id] = [2]string{"vpn-member-0", user}
		all = append(all, s)
	}
	burst := time.Since(began)
	eventually(t, 10*time.Second, "all sessions listed", func() error { return listedAre(ns, "dyn", want) })
	logins := w.n.Load() - before
	for _, s := range all {
		s.conn.Close()
	}
	eventually(t, 10*time.Second, "only the first session listed", func() error {
		return listedAre(ns, "dyn", map[string][2]string{first: {"vpn-member-0", "alice"}})
	})
	logouts := w.n.Load() - before - logins
	t.Logf("%d logins in %v: %d status writes; %d logouts: %d writes", n, burst.Round(time.Millisecond), logins, n, logouts)
	// One write per debounce period of the burst, plus the one it ends with.
	if limit := int64(burst/sessionDebounce) + 2; logins > limit || logouts > 2 {
		t.Errorf("%d writes for %d logins over %v (limit %d), %d for the logouts (limit 2)", logins, n, burst, limit, logouts)
	}
}

// Only updates that change the session entries or the disconnect
// annotation are kept from the loop.
func TestSessionsOnly(t *testing.T) {
	base := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Name: "h", ResourceVersion: "1", Annotations: map[string]string{"x": "y"}}}
	base.Status.AssignedMember = "m"
	sess := base.DeepCopy()
	sess.ResourceVersion = "2"
	sess.Status.SessionList = []vpnv1alpha1.HubSession{{ID: "a"}}
	sess.Status.SessionReports = []vpnv1alpha1.SessionReport{{Member: "m"}}
	sess.Annotations[vpnv1alpha1.AnnotationDisconnect] = "a"
	if !sessionsOnly(base, sess) {
		t.Error("entries and annotation: not sessionsOnly")
	}
	if _, ok := base.Annotations[vpnv1alpha1.AnnotationDisconnect]; ok || len(sess.Status.SessionList) != 1 {
		t.Error("sessionsOnly changed its arguments")
	}
	// The first disconnect request on a hub without annotations.
	bare := base.DeepCopy()
	bare.Annotations = nil
	first := bare.DeepCopy()
	first.Annotations = map[string]string{vpnv1alpha1.AnnotationDisconnect: "a"}
	if !sessionsOnly(bare, first) {
		t.Error("the first disconnect annotation: not sessionsOnly")
	}
	moved := sess.DeepCopy()
	moved.Status.AssignedMember = "n"
	other := sess.DeepCopy()
	other.Annotations["x"] = "z"
	spec := sess.DeepCopy()
	spec.Spec.Users = &vpnv1alpha1.UsersSpec{SecretName: "other"}
	for name, n := range map[string]*vpnv1alpha1.VirtualHub{"status": moved, "annotation": other, "spec": spec} {
		if sessionsOnly(sess, n) {
			t.Errorf("%s change counted as sessions only", name)
		}
	}
}

// The member holding a hub removes the entries of a member the hub's
// placement no longer names (it died and the hub moved), with no operator.
func TestSessionsOfGoneMemberRemovedByHolder(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	r := startMember(t, ns, "vpn-member-0", env.Config)
	_, id := idLogin(t, r, ns+"/dyn", "alice")
	mine := map[string][2]string{id: {"vpn-member-0", "alice"}}
	eventually(t, 10*time.Second, "own session listed", func() error { return listedAre(ns, "dyn", mine) })

	// vpn-member-1 held the hub before and died: its entry is still there.
	p := newSessionPublisher("vpn-member-1", k8s, testLogger(t))
	now := metav1.Now()
	if err := p.apply(bg(), ns, "dyn", statusApply{
		SessionList:    []vpnv1alpha1.HubSession{{ID: "0123456789abcdef0123456789abcdef", User: "bob", Kind: "client", Member: "vpn-member-1", Since: now, LastUpdated: now}},
		SessionReports: []vpnv1alpha1.SessionReport{{Member: "vpn-member-1", Sessions: 1, Listed: 1, LastUpdated: now}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the gone member's entry removed, ours kept", func() error { return listedAre(ns, "dyn", mine) })
}

// Counters are rewritten at the refresh while they change: frames alice
// sends show in her entry's rx and bob's tx.
func TestSessionCountersRefreshed(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "dyn", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "dyn", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	peerDir := t.TempDir()
	writePeerPKI(t, peerDir)
	r := startMemberWith(t, ns, "vpn-member-0", env.Config, meshSetup{peerDir: peerDir, ln: loopbackListener(t), sessionRefresh: 200 * time.Millisecond})
	alice, aliceID := idLogin(t, r, ns+"/dyn", "alice")
	_, bobID := idLogin(t, r, ns+"/dyn", "bob")
	// Listed (the login's write) before any frame: only a refresh can
	// bring the counters.
	eventually(t, 10*time.Second, "both listed", func() error {
		return listedAre(ns, "dyn", map[string][2]string{aliceID: {"vpn-member-0", "alice"}, bobID: {"vpn-member-0", "bob"}})
	})
	const n = 50
	for i := range n {
		if err := alice.conn.WriteFrames([][]byte{frame(broadcast, mac(1), fmt.Sprint("count ", i))}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "counters in the status", func() error {
		h, err := getHub(ns, "dyn")
		if err != nil {
			return err
		}
		var a, b *vpnv1alpha1.HubSession
		for i := range h.Status.SessionList {
			switch h.Status.SessionList[i].ID {
			case aliceID:
				a = &h.Status.SessionList[i]
			case bobID:
				b = &h.Status.SessionList[i]
			}
		}
		if a == nil || b == nil || a.RxFrames < n || b.TxFrames < n || a.RxBytes < b.TxBytes-int64(n) || b.TxBytes == 0 {
			return fmt.Errorf("alice %+v bob %+v", a, b)
		}
		return nil
	})
}
