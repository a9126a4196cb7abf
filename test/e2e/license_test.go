// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/e2e"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
)

// TestLicenseOfTwo: a cluster licensed for 2 client connections; 20 clients
// (`--no-retry`) connect at the same instant. Exactly 2 get a session, the 18
// others exit 7 saying "license exhausted", and at no moment are 3 connected —
// sampled from the clients' own status lines every 20 ms and from the members'
// Lease loads throughout. When one of the two leaves, a new client gets its
// license.
//
// The hub is static, so every member holds an instance and the entry member
// sends a session to a member with a free allocation (docs/member-cluster.md);
// with 2 licenses over 3 members no member holds more than 1.
func TestLicenseOfTwo(t *testing.T) {
	const clients, licenses = 20, 2
	e2e.DeployOperator(t)
	c := e2e.CreateCluster(t, e2e.ClusterSpec{
		Hubs:           []e2e.HubSpec{{Name: "office", Static: true}},
		Users:          map[string]string{"user": "user-pw"},
		ClientLicenses: licenses,
	})
	// Members admit nothing until the operator has published their allocations.
	waitAllocations(t, c, licenses)

	cls := make([]*e2e.Client, clients)
	for i := range cls {
		cls[i] = e2e.PrepareClient(t, fmt.Sprintf("C%02d", i), e2e.ClientOptions{Cluster: c, Hub: "office", User: "user", NoRetry: true})
	}

	// Sample the connected count until the test ends.
	var mu sync.Mutex
	maxClients, maxLease := 0, 0
	overLoads := "" // the first Lease loads that added up to more than the license
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			n := 0
			for _, cl := range cls {
				if cl.Connected() {
					n++
				}
			}
			mu.Lock()
			maxClients = max(maxClients, n)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			if loads, err := c.LoadsErr(); err == nil {
				n := sessionsOf(c, loads, "office")
				mu.Lock()
				if n > maxLease && n > licenses && overLoads == "" {
					overLoads = fmt.Sprintf("%s: %+v", time.Now().Format("15:04:05.000"), loads)
				}
				maxLease = max(maxLease, n)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	stopSampling := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopSampling)

	start := time.Now()
	launchAndSettle(t, cls)
	var connected []*e2e.Client
	for _, cl := range cls {
		if !cl.Exited() {
			connected = append(connected, cl)
			continue
		}
		if code := cl.Code(); code != 7 || !strings.Contains(cl.Output(), "license exhausted") {
			t.Errorf("client %s exited %d, want 7 with \"license exhausted\":\n%s", cl.Name, code, cl.Output())
		}
	}
	if len(connected) != licenses {
		mu.Lock()
		mc := maxClients
		mu.Unlock()
		st, _ := e2e.KubectlErr("get", "connectionlicense", "-n", c.Namespace, c.Name, "-o",
			`jsonpath=clients {.status.clients}; allocations {.status.allocations}`)
		t.Fatalf("%d clients connected with a license of %d (at most %d seen at once); license status: %s",
			len(connected), licenses, mc, st)
	}
	for _, cl := range connected {
		cl.WaitConnected(t, 30*time.Second)
	}
	settled := time.Since(start)
	// The members' own view agrees (the Lease load is renewed every
	// leaseDuration/3).
	e2e.Eventually(t, 30*time.Second, "members report 2 client sessions of the hub", func() (bool, error) {
		n, err := leaseSessions(c, "office")
		return n == licenses, fmt.Errorf("%d sessions (%v)", n, err)
	})
	t.Logf("refusal seen by a client: %s", firstLine(cls, "license exhausted"))

	// One of the two leaves; a newcomer takes its license (with retries: the
	// members' view of each other's free allocation follows the operator's
	// status writes).
	if code := connected[0].Stop(t); code != 0 {
		t.Fatalf("stopping %s: exit code %d", connected[0].Name, code)
	}
	late := e2e.StartClient(t, "late", e2e.ClientOptions{Cluster: c, Hub: "office", User: "user"})
	late.WaitConnected(t, 60*time.Second)
	e2e.Eventually(t, 30*time.Second, "members report 2 client sessions after the swap", func() (bool, error) {
		n, err := leaseSessions(c, "office")
		return n == licenses, fmt.Errorf("%d sessions (%v)", n, err)
	})

	stopSampling()
	mu.Lock()
	defer mu.Unlock()
	if maxClients > licenses || maxLease > licenses {
		t.Fatalf("at some moment %d clients (status lines) / %d sessions (Lease loads) were connected, license %d; loads then: %s", maxClients, maxLease, licenses, overLoads)
	}
	e2e.Record(t, "license of %d, %d clients at once: %d admitted, %d refused (exit 7), all settled in %.2fs; max connected seen %d (clients, every 20 ms) / %d (Lease loads)",
		licenses, clients, licenses, clients-licenses, settled.Seconds(), maxClients, maxLease)
}

// waitAllocations waits until the operator has published allocations for
// every member adding up to licenses, and has finished moving them to the
// split it wants (condition Balanced): members admit nothing before, and a
// license moving between two members is usable by neither for a moment.
func waitAllocations(t *testing.T, c *e2e.Cluster, licenses int) {
	t.Helper()
	e2e.Eventually(t, 60*time.Second, "license allocations published and balanced", func() (bool, error) {
		var l struct {
			Status struct {
				Allocations []struct {
					Member string `json:"member"`
					Client int    `json:"client"`
				} `json:"allocations"`
				Conditions []metav1.Condition `json:"conditions"`
			} `json:"status"`
		}
		e2e.GetJSON(t, &l, "connectionlicense", "-n", c.Namespace, c.Name)
		sum := 0
		for _, a := range l.Status.Allocations {
			sum += a.Client
		}
		balanced := meta.FindStatusCondition(l.Status.Conditions, vpnv1alpha1.ConditionBalanced)
		return len(l.Status.Allocations) == c.Members && sum == licenses && balanced != nil && balanced.Status == metav1.ConditionTrue,
			fmt.Errorf("allocations %+v, balanced %+v", l.Status.Allocations, balanced)
	})
}

// launchAndSettle starts every client at the same instant and waits until
// each is connected or has exited (refused).
func launchAndSettle(t *testing.T, cls []*e2e.Client) {
	t.Helper()
	for _, cl := range cls {
		cl.Launch(t)
	}
	for _, cl := range cls {
		if err := cl.AttachTAP(); err != nil && !strings.Contains(err.Error(), e2e.ErrClientExited.Error()) {
			t.Fatal(err)
		}
	}
	e2e.Eventually(t, 60*time.Second, "every client connected or refused", func() (bool, error) {
		settled := 0
		for _, cl := range cls {
			if cl.Exited() || cl.Connected() {
				settled++
			}
		}
		return settled == len(cls), fmt.Errorf("%d of %d settled", settled, len(cls))
	})
}

// leaseSessions sums the client sessions of a hub over the members' Lease loads.
func leaseSessions(c *e2e.Cluster, hub string) (int, error) {
	loads, err := c.LoadsErr()
	if err != nil {
		return 0, err
	}
	return sessionsOf(c, loads, hub), nil
}

// sessionsOf sums the client sessions of a hub over Lease loads.
func sessionsOf(c *e2e.Cluster, loads map[string]memberlease.Load, hub string) int {
	n := 0
	for _, l := range loads {
		n += int(l.Sessions[c.Namespace+"/"+hub].Client)
	}
	return n
}

func firstLine(cls []*e2e.Client, substr string) string {
	for _, cl := range cls {
		for _, l := range strings.Split(cl.Output(), "\n") {
			if strings.Contains(l, substr) {
				return l
			}
		}
	}
	return "(none)"
}
