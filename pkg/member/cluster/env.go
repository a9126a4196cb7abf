// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package cluster runs a member server in cluster mode: its identity comes from
// the environment the operator gives the member pod, its hubs, users and
// license allocation from Kubernetes objects read through informers, and it
// renews its own Lease (liveness and load in one write) and fences its dynamic
// hubs when it cannot renew. docs/member-cluster.md describes the behaviour.
package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hubfleet/hubfleet/pkg/memberpod"
)

// Environment variables the operator sets on every member pod
// (pkg/memberpod, the contract both sides import).
const (
	EnvPodName       = memberpod.EnvPodName
	EnvPodNamespace  = memberpod.EnvPodNamespace
	EnvPodIP         = memberpod.EnvPodIP
	EnvLeaseDuration = memberpod.EnvLeaseDuration
	EnvTLSDir        = memberpod.EnvTLSDir
	EnvTicketKey     = memberpod.EnvTicketKey
	EnvPeerDir       = memberpod.EnvPeerDir
	EnvPeerName      = memberpod.EnvPeerName
)

// Identity is who the member is and where its files are.
type Identity struct {
	Cluster   string // the VPNCluster's name (--cluster)
	Name      string // the pod's name: the member name in placements, allocations and the Lease
	Namespace string // the pod's (and the VPNCluster's) namespace
	IP        string // the pod's IP (logged; the mesh will advertise it)
	// LeaseDuration is the VPNCluster's spec.failover.leaseDurationSeconds.
	LeaseDuration time.Duration
	CertFile      string // <HUBFLEET_TLS_DIR>/tls.crt: leaf, then the CA
	KeyFile       string // <HUBFLEET_TLS_DIR>/tls.key
	CAFile        string // <HUBFLEET_TLS_DIR>/ca.crt, sent after the chain so clients can pin the CA
	TicketKeyFile string // HUBFLEET_TICKET_KEY
	// The member mesh's certificate (<cluster>-peer, shared by all members)
	// from HUBFLEET_PEER_DIR, and the name every member dials it by
	// (HUBFLEET_PEER_NAME, "<cluster>-member").
	PeerCertFile, PeerKeyFile, PeerCAFile string
	PeerName                              string
}

// IdentityFromEnv reads the identity from getenv (os.Getenv in the binary).
// Every error names the variable and says that the operator sets it, because
// a missing variable means the member was started outside its StatefulSet.
func IdentityFromEnv(cluster string, getenv func(string) string) (Identity, error) {
	var errs []error
	need := func(name, what string) string {
		v := getenv(name)
		if v == "" {
			errs = append(errs, fmt.Errorf("environment variable %s (%s) is not set: the operator sets it on member pods; outside a cluster use `hubfleet member --config FILE`", name, what))
		}
		return v
	}
	id := Identity{
		Cluster:   cluster,
		Name:      need(EnvPodName, "the pod's name, from the downward API"),
		Namespace: need(EnvPodNamespace, "the pod's namespace, from the downward API"),
		IP:        getenv(EnvPodIP), // only logged: a pod briefly without an IP must still start
	}
	if cluster == "" {
		errs = append(errs, errors.New("--cluster is empty: give the VPNCluster's name (the operator passes it in the member's args)"))
	}
	if s := need(EnvLeaseDuration, "the VPNCluster's spec.failover.leaseDurationSeconds"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("environment variable %s=%q is not a positive number of seconds: the operator sets it from spec.failover.leaseDurationSeconds", EnvLeaseDuration, s))
		}
		id.LeaseDuration = time.Duration(n) * time.Second
	}
	if dir := need(EnvTLSDir, "the directory of the mounted serving certificate"); dir != "" {
		id.CertFile = filepath.Join(dir, "tls.crt")
		id.KeyFile = filepath.Join(dir, "tls.key")
		id.CAFile = filepath.Join(dir, "ca.crt")
		for _, f := range []string{id.CertFile, id.KeyFile} {
			if _, err := os.Stat(f); err != nil {
				errs = append(errs, fmt.Errorf("%s (from %s): %w: the operator mounts the cluster's serving certificate Secret there", f, EnvTLSDir, err))
			}
		}
	}
	if dir := need(EnvPeerDir, "the directory of the mounted member-mesh certificate"); dir != "" {
		id.PeerCertFile = filepath.Join(dir, "tls.crt")
		id.PeerKeyFile = filepath.Join(dir, "tls.key")
		id.PeerCAFile = filepath.Join(dir, "ca.crt")
		for _, f := range []string{id.PeerCertFile, id.PeerKeyFile, id.PeerCAFile} {
			if _, err := os.Stat(f); err != nil {
				errs = append(errs, fmt.Errorf("%s (from %s): %w: the operator mounts the Secret <cluster>-peer there", f, EnvPeerDir, err))
			}
		}
	}
	id.PeerName = need(EnvPeerName, "the member-mesh certificate's name, <cluster>-member")
	id.TicketKeyFile = need(EnvTicketKey, "the path of the shared resumption-ticket key")
	if id.TicketKeyFile != "" {
		if _, err := os.Stat(id.TicketKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("%s (from %s): %w: the operator mounts the Secret <cluster>-ticket-key there", id.TicketKeyFile, EnvTicketKey, err))
		}
	}
	return id, errors.Join(errs...)
}
