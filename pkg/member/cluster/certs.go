// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"

	"github.com/hubfleet/hubfleet/pkg/member"
)

// The operator renews the serving and peer certificates at two thirds of
// their 90-day life and the kubelet rewrites the mounted Secrets in place (a
// symlink swap of ..data). A member that read its files once would present an
// expired certificate from day 90 on, so it watches their directories and
// takes new contents without a restart: the serving certificate and ticket
// key through a forced Apply, the mesh certificate through the callbacks
// below. Sessions already running keep their connections.

// peerCert is the mesh certificate, read per handshake so a renewal reaches
// new links and relays at once.
type peerCert struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	pem               []byte // certificate + key as last loaded
}

func loadPeerCert(certFile, keyFile string) (*peerCert, error) {
	p := &peerCert{certFile: certFile, keyFile: keyFile}
	if _, err := p.reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// reload reads the files again; changed is false when their contents are
// those already loaded. A pair that does not load keeps the previous one.
func (p *peerCert) reload() (changed bool, err error) {
	c, errC := os.ReadFile(p.certFile)
	k, errK := os.ReadFile(p.keyFile)
	if errC != nil || errK != nil {
		return false, fmt.Errorf("member mesh certificate (%s): %w", EnvPeerDir, errors.Join(errC, errK))
	}
	both := append(append([]byte{}, c...), k...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cert != nil && bytes.Equal(both, p.pem) {
		return false, nil
	}
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		return false, fmt.Errorf("member mesh certificate (%s): %w", EnvPeerDir, err)
	}
	p.cert, p.pem = &cert, both
	return true, nil
}

func (p *peerCert) get() *tls.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cert
}

// use makes conf present p's current certificate on both ends of the mesh.
func (p *peerCert) use(conf *tls.Config) {
	conf.Certificates = nil
	conf.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.get(), nil }
	conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return p.get(), nil }
}

// watchFiles reloads the certificates and the ticket key when their mounted
// files change, until ctx ends. It logs and gives up (a restart then picks up
// renewals) only when the directories cannot be watched at all.
func (m *Member) watchFiles(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		m.log.Error("cannot watch the certificate files; renewed certificates need a member restart", "err", err)
		return
	}
	defer w.Close()
	dirs := map[string]bool{}
	for _, f := range []string{m.id.CertFile, m.id.KeyFile, m.id.TicketKeyFile, m.id.PeerCertFile, m.id.PeerKeyFile} {
		if f == "" || dirs[filepath.Dir(f)] {
			continue
		}
		dirs[filepath.Dir(f)] = true
		if err := w.Add(filepath.Dir(f)); err != nil {
			m.log.Error("cannot watch a certificate directory; renewed certificates need a member restart", "dir", filepath.Dir(f), "err", err)
			return
		}
	}
	member.Settled(ctx, w, m.log, "the certificate files", m.filesChanged)
}

// filesChanged takes new mesh certificate contents at once and makes the next
// recompute Apply the configuration again, which re-reads the serving
// certificate and the ticket key (Apply is skipped for an unchanged
// configuration otherwise).
func (m *Member) filesChanged() {
	if changed, err := m.peer.reload(); err != nil {
		m.log.Error("renewed mesh certificate does not load; still presenting the previous one", "err", err)
	} else if changed {
		m.log.Info("mesh certificate reloaded")
	}
	m.config.invalidate()
	m.poke()
}
