// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/testutil"
	"github.com/hubfleet/hubfleet/pkg/mesh"
	"github.com/hubfleet/hubfleet/pkg/protocol"
)

// TestCertificateRenewal: when the operator renews the certificates and the
// kubelet rewrites the mounted Secrets, a running member presents the new
// serving certificate to the next client and the new peer certificate to the
// next mesh connection, without a restart — and a session that was running
// keeps running.
func TestCertificateRenewal(t *testing.T) {
	ns := fixture(t)
	newHub(t, ns, "corp", vpnv1alpha1.HubDynamic)
	setStatus(t, ns, "corp", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	r := startMember(t, ns, "vpn-member-0", env.Config)
	s := r.mustLogin(t, ns+"/corp", "alice")

	oldServing := presented(t, r.addr, protocol.ALPN)
	oldPeer := presented(t, r.m.opts.MeshListener.Addr().String(), mesh.ALPNRelay)

	// The serving certificate: a new leaf (under a new CA, so it cannot be
	// mistaken for the old one) written where the Secret is mounted.
	testutil.NewPKI(t).WriteServer(t, filepath.Dir(r.m.id.CertFile))
	eventually(t, 15*time.Second, "the new serving certificate is presented", func() error {
		if got := presented(t, r.addr, protocol.ALPN); bytes.Equal(got, oldServing) {
			return errors.New("still the old certificate")
		}
		return nil
	})
	// The mesh certificate.
	writePeerPKI(t, filepath.Dir(r.m.id.PeerCertFile))
	eventually(t, 15*time.Second, "the new mesh certificate is presented", func() error {
		if got := presented(t, r.m.opts.MeshListener.Addr().String(), mesh.ALPNRelay); bytes.Equal(got, oldPeer) {
			return errors.New("still the old certificate")
		}
		return nil
	})
	select {
	case err := <-s.end:
		t.Fatalf("the session running during the renewal ended: %v", err)
	default:
	}
}

// presented returns the leaf certificate the TLS server at addr presents
// (raw DER), whatever it is signed by: the test compares, it does not trust.
func presented(t *testing.T, addr, alpn string) []byte {
	t.Helper()
	var leaf []byte
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13, NextProtos: []string{alpn}, InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf = raw[0]
			return nil
		},
	}
	c, err := tls.Dial("tcp", addr, conf)
	if c != nil {
		c.Close()
	}
	if leaf == nil {
		t.Fatal(fmt.Errorf("no certificate from %s: %v", addr, err))
	}
	return leaf
}
