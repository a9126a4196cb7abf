// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// freezer stands in for a frozen or cut-off member process as far as the API
// server is concerned: while on, Lease requests fail (no renewal gets
// through) and the bytes of VirtualHub watch streams stay where they are (a
// stopped process reads nothing from its sockets), so the informer cache
// keeps the placement from before the freeze. Thawing the Lease and the
// watch separately reproduces the order a woken process sees them in: its
// renewal can succeed before its informers have read what queued up.
type freezer struct {
	leases pausable
	watch  pausable
}

// wrap is a rest.Config WrapTransport.
func (f *freezer) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) { return f.roundTrip(next, req) })
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// pausable is a gate readers wait at while it is closed.
type pausable struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func (p *pausable) wait() {
	p.mu.Lock()
	ch := p.open
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (p *pausable) closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open != nil
}

func (p *pausable) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		p.open = make(chan struct{})
	}
}

func (p *pausable) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open != nil {
		close(p.open)
		p.open = nil
	}
}

func (f *freezer) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/leases") && f.leases.closed() {
		return nil, errors.New("test: member frozen, Lease request not sent")
	}
	resp, err := next.RoundTrip(req)
	if err == nil && strings.Contains(req.URL.Path, "/virtualhubs") && req.URL.Query().Get("watch") == "true" {
		resp.Body = &frozenBody{ReadCloser: resp.Body, gate: &f.watch}
	}
	return resp, err
}

// frozenBody delivers a watch stream's bytes only while the gate is open.
type frozenBody struct {
	io.ReadCloser
	gate *pausable
}

func (b *frozenBody) Read(p []byte) (int, error) {
	b.gate.wait()
	n, err := b.ReadCloser.Read(p)
	// Bytes read just before the freeze are held back too, as a process
	// stopped between read(2) and decoding would.
	b.gate.wait()
	return n, err
}

// TestNoSplitBrainAfterFreeze: a member whose Lease expired while it was
// frozen must not serve a dynamic hub the operator moved meanwhile, even
// though its renewal succeeds again before its informers have caught up;
// hubs still placed on it come back once it has re-read the placement.
// Every observation point checks the moved hub is not served.
func TestNoSplitBrainAfterFreeze(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "moved", vpnv1alpha1.HubDynamic)
	newHub(t, ns, "kept", vpnv1alpha1.HubDynamic)
	here := vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}}
	setStatus(t, ns, "moved", here)
	setStatus(t, ns, "kept", here)

	fz := &freezer{}
	rc := rest.CopyConfig(env.Config)
	rc.WrapTransport = fz.wrap
	r := startMember(t, ns, "vpn-member-0", rc)
	moved, kept := ns+"/moved", ns+"/kept"
	sMoved, sKept := r.mustLogin(t, moved, "alice"), r.mustLogin(t, kept, "alice")

	// Freeze: no renewal, no watch event reaches the member.
	fz.watch.pause()
	fz.leases.pause()
	t.Cleanup(fz.watch.resume)
	t.Cleanup(fz.leases.resume)
	sMoved.shutDown(t, 10*time.Second)
	sKept.shutDown(t, time.Second)
	if !r.m.State().Fenced {
		t.Fatal("not fenced after its sessions were shut down")
	}
	if err := r.m.Ready(); err == nil {
		t.Fatal("Ready() while fenced")
	}

	// The operator moves one hub while the member is frozen.
	setStatus(t, ns, "moved", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-1", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-1"}}})

	notServingMoved := func(step string) {
		t.Helper()
		if slices.Contains(r.m.State().Hubs, moved) {
			t.Fatalf("%s: the member serves %s, which the operator moved to vpn-member-1 (split brain)", step, moved)
		}
	}
	refusedMoved := func(step string) {
		t.Helper()
		notServingMoved(step)
		s, err := r.login(moved, "bob")
		if err == nil {
			s.conn.Close()
			t.Fatalf("%s: a login to %s was admitted on the member it was moved away from", step, moved)
		}
		if le, ok := errors.AsType[*protocol.LoginError](err); !ok || le.Code != protocol.NotServedHere {
			t.Fatalf("%s: login to %s: %v, want NotServedHere", step, moved, err)
		}
	}
	refusedMoved("frozen")

	// Wake the Lease first: renewals succeed while the informer still holds
	// the old placement. Watch several renewals go by (the fix re-reads the
	// placement after a renewal; the old behaviour unfenced at the first).
	woke := time.Now()
	fz.leases.resume()
	renewals := 0
	var last time.Time
	eventually(t, 15*time.Second, "three renewals after waking", func() error {
		refusedMoved(fmt.Sprintf("awake, informer stale, %d renewals", renewals))
		if lr := r.m.State().LastRenew; lr.After(woke) && !lr.Equal(last) {
			last = lr
			renewals++
		}
		if renewals < 3 {
			return fmt.Errorf("%d renewals so far", renewals)
		}
		return nil
	})
	// With the informer still stale the member cannot tell which of its hubs
	// it kept, so it serves neither dynamic hub, and is not ready.
	if slices.Contains(r.m.State().Hubs, kept) {
		t.Fatalf("serves %s on an informer cache older than its fresh read of the placement", kept)
	}
	if err := r.m.Ready(); err == nil {
		t.Fatal("Ready() while its informer is older than the placement")
	}

	// The informer catches up: the hub still placed here comes back, the
	// moved one never does.
	fz.watch.resume()
	eventually(t, 15*time.Second, kept+" served again", func() error {
		notServingMoved("informer caught up")
		s, err := r.login(kept, "bob")
		if err != nil {
			return err
		}
		s.conn.Close()
		return nil
	})
	refusedMoved("after recovery")
	if r.m.State().Fenced {
		t.Fatal("still fenced while serving its dynamic hub")
	}
	if err := r.m.Ready(); err != nil {
		t.Fatalf("not ready after recovery: %v", err)
	}
}
