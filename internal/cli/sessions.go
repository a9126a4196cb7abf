// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hubfleet/hubfleet/internal/scheme"
	"github.com/hubfleet/hubfleet/pkg/sessionadmin"
)

func init() {
	Register(Command{Name: "sessions", Summary: "list a VirtualHub's sessions (Kubernetes RBAC: get virtualhubs)", Run: runSessions})
	Register(Command{Name: "disconnect", Summary: "end sessions of a VirtualHub (Kubernetes RBAC: patch virtualhubs)", Run: runDisconnect})
}

// kubeFlags are the Kubernetes client flags of sessions and disconnect:
// the caller's own kubeconfig, so the API server's RBAC decides.
type kubeFlags struct {
	kubeconfig, context, namespace string
	as                             string
	asGroups                       stringList
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (k *kubeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)")
	fs.StringVar(&k.context, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVar(&k.namespace, "n", "", "the hub's namespace (default: the context's)")
	fs.StringVar(&k.namespace, "namespace", "", "same as -n")
	fs.StringVar(&k.as, "as", "", "impersonate this user, as kubectl --as (to check what a tenant may do)")
	fs.Var(&k.asGroups, "as-group", "impersonate this group, as kubectl --as-group (repeatable)")
}

// client builds a client and the namespace to use.
func (k *kubeFlags) client() (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.kubeconfig != "" {
		rules.ExplicitPath = k.kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{
		CurrentContext: k.context,
		AuthInfo:       clientcmdapi.AuthInfo{Impersonate: k.as, ImpersonateGroups: k.asGroups},
	})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("no Kubernetes API configuration: %w", err)
	}
	ns := k.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil {
			return nil, "", err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	return c, ns, err
}

// parseInterspersed parses flags before and after positional arguments
// (`hubfleet sessions HUB -n NS` as kubectl allows) and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, exit int, done bool) {
	for {
		if exit, done = parseFlags(fs, args); done {
			return nil, exit, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func runSessions(args []string) int {
	var k kubeFlags
	fs := newFlagSet("sessions", Help{
		Usage: "hubfleet sessions [-n NAMESPACE] HUB",
		About: "Lists the sessions of VirtualHub HUB as its members report them in the hub's\n" +
			"status (status.sessionList): id, user, kind, source address, member, start,\n" +
			"bytes and frames both ways, DHCP address, and how old the counters are (members\n" +
			"refresh them at most every 30 s). Needs get on virtualhubs in the namespace.",
		Examples: []string{
			"hubfleet sessions -n tenant-a corp",
			"hubfleet sessions -n tenant-a corp -o json",
			"kubectl get virtualhub corp -n tenant-a -o jsonpath='{.status.sessionList}'",
		},
	})
	k.register(fs)
	output := fs.String("o", "", "output: \"\" (a table) or json (the status's sessionList and sessionReports)")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || (*output != "" && *output != "json") {
		fmt.Fprintln(stderr, "hubfleet sessions: give one hub name (and -o json or no -o); run `hubfleet sessions -h`")
		return ExitUsage
	}
	c, ns, err := k.client()
	if err != nil {
		fmt.Fprintf(stderr, "hubfleet sessions: %v\n", err)
		return ExitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := types.NamespacedName{Namespace: ns, Name: pos[0]}
	h, err := sessionadmin.Get(ctx, c, key)
	if err != nil {
		fmt.Fprintf(stderr, "hubfleet sessions: %v\n", sessionadmin.Explain(err, "get", key))
		return ExitError
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"sessionList": h.Status.SessionList, "sessionReports": h.Status.SessionReports})
		return ExitOK
	}
	sessionadmin.Print(stdout, h, time.Now())
	return ExitOK
}

func runDisconnect(args []string) int {
	var k kubeFlags
	fs := newFlagSet("disconnect", Help{
		Usage: "hubfleet disconnect [-n NAMESPACE] HUB SESSION-ID...",
		About: "Ends sessions of VirtualHub HUB: writes their ids into the hub's\n" +
			"vpn.hubfleet.io/disconnect annotation (needs patch on virtualhubs); the member\n" +
			"serving each session sends its client Shutdown (\"disconnected by an\n" +
			"administrator\") and drops it from the hub's status. The command waits for that,\n" +
			"then says for each user whether its client can come back: a user still in the\n" +
			"hub's users Secret with the same password reconnects at once; remove the user\n" +
			"from the Secret, or change the password, to keep them out (either also ends all\n" +
			"their sessions). An id may be shortened to a\n" +
			"unique prefix of 6 or more digits.",
		Examples: []string{
			"hubfleet sessions -n tenant-a corp",
			"hubfleet disconnect -n tenant-a corp 3f2a9c",
		},
	})
	k.register(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the sessions to end")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) < 2 {
		fmt.Fprintln(stderr, "hubfleet disconnect: give the hub and at least one session id; run `hubfleet disconnect -h`")
		return ExitUsage
	}
	c, ns, err := k.client()
	if err != nil {
		fmt.Fprintf(stderr, "hubfleet disconnect: %v\n", err)
		return ExitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	key := types.NamespacedName{Namespace: ns, Name: pos[0]}
	out, err := sessionadmin.Disconnect(ctx, c, key, pos[1:], *timeout)
	for _, line := range out {
		fmt.Fprintln(stdout, line)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hubfleet disconnect: %v\n", err)
		return ExitError
	}
	return ExitOK
}
