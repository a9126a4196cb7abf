// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command pki writes the certificates, keys and kubeconfigs of the local cluster
// (hack/local-cluster/cluster.sh): one throwaway CA, the API server's serving
// certificate, one client certificate per component and user, the kubelet's serving
// certificate (so `kubectl logs/exec` verify it), and the service-account key pair.
//
// It is a Go program rather than openssl lines because the subjects carry
// Kubernetes identities (CN = user, O = groups) that are easy to get subtly wrong in
// openssl config, and it needs nothing beyond the Go toolchain. ECDSA P-256 keeps
// generation instant.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type config struct {
	dir       string
	server    string
	node      string
	nodeIP    net.IP
	serviceIP net.IP
	validity  time.Duration
}

func main() {
	var c config
	var nodeIP, serviceIP string
	flag.StringVar(&c.dir, "dir", "", "output `directory` (certificates in <dir>/pki, kubeconfigs in <dir>)")
	flag.StringVar(&c.server, "server", "", "API server `URL` written into the kubeconfigs")
	flag.StringVar(&c.node, "node", "hubfleet-node", "node `name`")
	flag.StringVar(&nodeIP, "node-ip", "", "node and API server `IP`")
	flag.StringVar(&serviceIP, "service-ip", "", "`IP` of the kubernetes Service (first address of the service range)")
	flag.DurationVar(&c.validity, "validity", 30*24*time.Hour, "certificate lifetime (a local cluster is short-lived)")
	flag.Parse()
	c.nodeIP, c.serviceIP = net.ParseIP(nodeIP), net.ParseIP(serviceIP)
	if c.dir == "" || c.server == "" || c.nodeIP == nil || c.serviceIP == nil {
		fmt.Fprintln(os.Stderr, "pki: -dir, -server, -node-ip and -service-ip are required")
		os.Exit(2)
	}
	if err := run(&c); err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
}

type keyPair struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	keyPEM  []byte
}

func run(c *config) error {
	pki := filepath.Join(c.dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	ca, err := issue(c, nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "hubfleet-local-cluster-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	})
	if err != nil {
		return err
	}
	if err := writePair(pki, "ca", ca); err != nil {
		return err
	}

	serving := func(cn string, ips []net.IP, dns []string) *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn},
			IPAddresses: ips,
			DNSNames:    dns,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
	}
	client := func(user string, groups ...string) *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: user, Organization: groups},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	}
	loopback := net.IPv4(127, 0, 0, 1)
	certs := []struct {
		name string
		tmpl *x509.Certificate
	}{
		{"apiserver", serving("kube-apiserver", []net.IP{c.nodeIP, c.serviceIP, loopback},
			[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", c.node})},
		// The API server calls kubelets (logs, exec, port-forward) with this identity.
		{"apiserver-kubelet-client", client("kube-apiserver-kubelet-client", "system:masters")},
		{"kubelet-serving", serving(c.node, []net.IP{c.nodeIP, loopback}, []string{c.node, "localhost"})},
		{"admin", client("hubfleet-local-admin", "system:masters")},
		// The Node authorizer and NodeRestriction admission key on exactly this form.
		{"kubelet", client("system:node:"+c.node, "system:nodes")},
		{"controller-manager", client("system:kube-controller-manager")},
		{"scheduler", client("system:kube-scheduler")},
		{"kube-proxy", client("system:kube-proxy")},
	}
	pairs := map[string]*keyPair{}
	for _, ct := range certs {
		p, err := issue(c, ca, ct.tmpl)
		if err != nil {
			return fmt.Errorf("%s: %w", ct.name, err)
		}
		if err := writePair(pki, ct.name, p); err != nil {
			return err
		}
		pairs[ct.name] = p
	}

	// Service-account token signing key: the API server signs with the private key
	// and verifies with the public one; the controller manager signs legacy tokens.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pki, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pki, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o644); err != nil {
		return err
	}

	for _, kc := range []struct{ file, cert, user string }{
		{"kubeconfig", "admin", "hubfleet-local-admin"},
		{"kubelet.kubeconfig", "kubelet", "system:node:" + c.node},
		{"controller-manager.kubeconfig", "controller-manager", "system:kube-controller-manager"},
		{"scheduler.kubeconfig", "scheduler", "system:kube-scheduler"},
		{"kube-proxy.kubeconfig", "kube-proxy", "system:kube-proxy"},
	} {
		if err := writeKubeconfig(filepath.Join(c.dir, kc.file), c.server, ca.certPEM, pairs[kc.cert], kc.user); err != nil {
			return err
		}
	}
	return nil
}

func issue(c *config, parent *keyPair, tmpl *x509.Certificate) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	// Backdated a little: the components start within a second of this and a clock
	// step would otherwise make a fresh certificate "not yet valid".
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(c.validity)
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func writePair(dir, name string, p *keyPair) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), p.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), p.keyPEM, 0o600)
}

func writeKubeconfig(path, server string, caPEM []byte, p *keyPair, user string) error {
	b64 := base64.StdEncoding.EncodeToString
	var sb strings.Builder
	fmt.Fprintf(&sb, `apiVersion: v1
kind: Config
clusters:
- name: hubfleet-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: hubfleet-local
  context:
    cluster: hubfleet-local
    user: %s
    namespace: default
current-context: hubfleet-local
`, server, b64(caPEM), user, b64(p.certPEM), b64(p.keyPEM), user)
	return os.WriteFile(path, []byte(sb.String()), 0o600)
}
