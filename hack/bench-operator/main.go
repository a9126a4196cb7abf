// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command bench-operator measures the hubfleet operator against a real
// kube-apiserver (the envtest control plane): 100 members, 10,000 dynamic
// VirtualHubs.
//
//   - placement: time from the first hub created until every hub has a member;
//   - failover: over N trials, time from one member's pod turning Ready=False
//     until every dynamic hub it held shows another member in the API (seen
//     through a watch, as any client would), p50 and p99;
//   - steady state: API writes (any non-GET request) the operator makes in
//     30 s while members keep renewing their Leases and nothing else changes.
//
// Members are simulated as the envtest tests do: the benchmark creates the
// member pods, sets their status, and renews their Leases every
// leaseDuration/3 through its own client, whose requests are not counted.
// Run it with hack/bench-operator.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/controllers"
	"github.com/hubfleet/hubfleet/internal/scheme"
	"github.com/hubfleet/hubfleet/internal/testenv"
	"github.com/hubfleet/hubfleet/pkg/memberlease"
	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

var (
	members  = flag.Int("members", 100, "member pods")
	hubs     = flag.Int("hubs", 10000, "dynamic VirtualHubs")
	trials   = flag.Int("trials", 25, "failover trials")
	steady   = flag.Duration("steady", 30*time.Second, "steady-state window for counting writes")
	qps      = flag.Float64("qps", 500, "operator client QPS (burst is twice this)")
	leaseSec = flag.Int("lease-seconds", 15, "VPNCluster failover.leaseDurationSeconds (members renew every third)")
	workers  = flag.Int("workers", 0, "operator placement write workers (controllers.Options.PlacementWorkers; 0: its default)")
	existing = flag.Bool("preexisting", false, "create the hubs and member pods before the VPNCluster, and time placing 10,000 existing hubs from the cluster's creation (isolates the operator from hub-creation throughput)")
	verbose  = flag.Bool("v", false, "operator debug log on stderr (placement timings)")
)

// writeCounter counts the operator's non-GET requests by verb and resource.
type writeCounter struct {
	total atomic.Int64
	mu    sync.Mutex
	by    map[string]int
}

// counting wraps one of the operator's transports (client-go builds several
// from one rest.Config: clients, informers, the event recorder).
type counting struct {
	next http.RoundTripper
	w    *writeCounter
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		c.w.total.Add(1)
		c.w.mu.Lock()
		c.w.by[r.Method+" "+resourceOf(r.URL.Path)]++
		c.w.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

func (w *writeCounter) snapshot() (int64, map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]int, len(w.by))
	for k, v := range w.by {
		m[k] = v
	}
	return w.total.Load(), m
}

// resourceOf turns /apis/g/v/namespaces/ns/virtualhubs/x/status into
// "virtualhubs/status".
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i < len(parts); i++ {
		if parts[i] == "namespaces" && i+2 < len(parts) {
			parts = parts[i+2:]
			break
		}
	}
	if len(parts) >= 3 {
		return parts[0] + "/" + parts[2]
	}
	return parts[0]
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-operator:", err)
		os.Exit(1)
	}
}

func run() error {
	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The operator, with its writes counted.
	counter := &writeCounter{by: map[string]int{}}
	opCfg := rest.CopyConfig(env.Config)
	opCfg.QPS, opCfg.Burst = float32(*qps), int(2**qps)
	opCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting{next: rt, w: counter} })
	mgr, err := ctrl.NewManager(opCfg, ctrl.Options{Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, controllers.Options{MemberImage: "hubfleet:bench", PlacementWorkers: *workers}); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()

	c := env.Client
	ns := "bench"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	cl := &vpnv1alpha1.VPNCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"},
		Spec: vpnv1alpha1.VPNClusterSpec{Members: int32(*members),
			Failover: vpnv1alpha1.FailoverSpec{LeaseDurationSeconds: int32(*leaseSec)}},
	}
	// Watch hubs and the cluster through an informer, as a user would.
	w, err := newWatcher(ctx, env.Config)
	if err != nil {
		return err
	}
	createHubs := func() error {
		return parallel(*hubs, 32, func(i int) error {
			return c.Create(ctx, &vpnv1alpha1.VirtualHub{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("hub-%05d", i)},
				Spec:       vpnv1alpha1.VirtualHubSpec{ClusterRef: vpnv1alpha1.ClusterReference{Name: "vpn"}, Type: vpnv1alpha1.HubDynamic},
			})
		})
	}
	startMembers := func() error {
		return parallel(*members, 16, func(i int) error { return startMember(ctx, c, cl, i) })
	}

	if *existing {
		// Hubs and Ready members first; the operator marks the hubs
		// ClusterNotFound meanwhile. Then the cluster appears with every
		// member already up, and all 10,000 hubs are placed at once.
		if err := createHubs(); err != nil {
			return err
		}
		if err := startMembers(); err != nil {
			return err
		}
		stopRenew := renewLeases(ctx, c, cl)
		defer stopRenew()
		if err := quiet(counter, 3*time.Second, 5*time.Minute); err != nil {
			return err
		}
		t0 := time.Now()
		if err := c.Create(ctx, cl); err != nil {
			return err
		}
		if err := w.waitPlaced(*hubs, 5*time.Minute); err != nil {
			return err
		}
		fmt.Printf("placement: %d existing hubs all placed %v after the VPNCluster was created (%d members already Ready)\n",
			*hubs, time.Since(t0).Round(time.Millisecond), *members)
	} else {
		if err := c.Create(ctx, cl); err != nil {
			return err
		}
		start := time.Now()
		if err := startMembers(); err != nil {
			return err
		}
		stopRenew := renewLeases(ctx, c, cl)
		defer stopRenew()
		if err := w.waitCluster(fmt.Sprintf("%d/%d", *members, *members), 2*time.Minute); err != nil {
			return err
		}
		fmt.Printf("members: %d ready in %v\n", *members, time.Since(start).Round(time.Millisecond))

		t0 := time.Now()
		if err := createHubs(); err != nil {
			return err
		}
		created := time.Since(t0)
		if err := w.waitPlaced(*hubs, 5*time.Minute); err != nil {
			return err
		}
		placed := time.Since(t0)
		fmt.Printf("placement: %d hubs created in %v; all placed %v after the first create (%v after the last)\n",
			*hubs, created.Round(time.Millisecond), placed.Round(time.Millisecond), (placed - created).Round(time.Millisecond))
	}
	if err := w.waitCluster(fmt.Sprintf("%d/%d", *members, *members), 2*time.Minute); err != nil {
		return err
	}
	perMember := w.perMember()
	fmt.Printf("placement spread: min %d max %d hubs per member\n", slices.Min(perMember), slices.Max(perMember))

	// Failover trials.
	var lat, first []time.Duration
	var moved []int
	for trial := 0; trial < *trials; trial++ {
		name := fmt.Sprintf("vpn-member-%d", trial%*members)
		held := w.hubsOn(name)
		t := time.Now()
		if err := setReady(ctx, c, ns, name, false); err != nil {
			return err
		}
		if err := w.waitFirstGone(name, held, time.Minute); err != nil {
			return fmt.Errorf("trial %d: %w", trial, err)
		}
		first = append(first, time.Since(t))
		if err := w.waitGone(name, held, time.Minute); err != nil {
			return fmt.Errorf("trial %d: %w", trial, err)
		}
		lat = append(lat, time.Since(t))
		moved = append(moved, len(held))
		if err := setReady(ctx, c, ns, name, true); err != nil {
			return err
		}
		if err := w.waitCluster(fmt.Sprintf("%d/%d", *members, *members), time.Minute); err != nil {
			return err
		}
	}
	slices.Sort(lat)
	slices.Sort(first)
	fmt.Printf("failover: first hub moved p50 %v p99 %v\n", pct(first, 50), pct(first, 99))
	fmt.Printf("failover: %d trials, hubs moved per trial min %d max %d; p50 %v p99 %v max %v\n",
		len(lat), slices.Min(moved), slices.Max(moved), pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(time.Millisecond))

	// Steady state: let the last trial settle (hub counts in the cluster
	// status lag by up to a second), then count.
	if err := quiet(counter, 3*time.Second, time.Minute); err != nil {
		return err
	}
	n0, by0 := counter.snapshot()
	time.Sleep(*steady) // the measurement window itself
	n1, by1 := counter.snapshot()
	fmt.Printf("steady state: %d operator writes in %v (%.2f/s) while %d members renewed Leases every %ds\n",
		n1-n0, *steady, float64(n1-n0)/steady.Seconds(), *members, *leaseSec/3)
	for k, v := range by1 {
		if d := v - by0[k]; d > 0 {
			fmt.Printf("  %s: %d\n", k, d)
		}
	}
	return nil
}

// quiet waits until the operator made no write for d.
func quiet(w *writeCounter, d, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last, since := w.total.Load(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if n := w.total.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= d {
			return nil
		}
	}
	return fmt.Errorf("operator never went quiet for %v", d)
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(min(i, len(sorted))-1, 0)].Round(time.Millisecond)
}

func parallel(n, workers int, fn func(int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func startMember(ctx context.Context, c client.Client, cl *vpnv1alpha1.VPNCluster, i int) error {
	name := fmt.Sprintf("%s-member-%d", cl.Name, i)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: name,
			Labels: map[string]string{memberpod.LabelCluster: cl.Name, "app.kubernetes.io/component": "member"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "member", Image: "hubfleet:bench"}}, AutomountServiceAccountToken: ptr.To(false)},
	}
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	if err := setReady(ctx, c, cl.Namespace, name, true); err != nil {
		return err
	}
	return c.Create(ctx, lease(cl, name))
}

func lease(cl *vpnv1alpha1.VPNCluster, name string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: memberlease.LeaseName(name), Labels: memberlease.Labels(cl.Name),
			Annotations: map[string]string{memberpod.AnnotationLoad: memberlease.Encode(memberlease.Load{})}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(int32(*leaseSec)),
			RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
}

func setReady(ctx context.Context, c client.Client, ns, name string, ready bool) error {
	pod := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		return err
	}
	s := corev1.ConditionFalse
	if ready {
		s = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: s, LastTransitionTime: metav1.Now()}}
	return c.Status().Update(ctx, pod)
}

// renewLeases renews every member's Lease every leaseDuration/3, as members do.
func renewLeases(ctx context.Context, c client.Client, cl *vpnv1alpha1.VPNCluster) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(memberlease.RenewInterval(time.Duration(*leaseSec) * time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_ = parallel(*members, 8, func(i int) error {
				l := &coordinationv1.Lease{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: cl.Namespace, Name: fmt.Sprintf("%s-member-%d", cl.Name, i)}, l); err != nil {
					return nil
				}
				l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				if err := c.Update(ctx, l); err != nil && ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "renew:", err)
				}
				return nil
			})
		}
	}()
	return func() { cancel(); <-done }
}
