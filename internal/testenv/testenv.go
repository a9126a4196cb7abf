// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package testenv starts a real kube-apiserver and etcd (envtest) with hubfleet's CRDs
// installed, for integration tests. The binaries are built from source by
// hack/build-k8s.sh; `make test` points KUBEBUILDER_ASSETS at them.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/scheme"
)

// Env is a running test control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
}

// RepoRoot is the module's root directory, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Assets returns the directory holding kube-apiserver, etcd and kubectl: from
// KUBEBUILDER_ASSETS, else by asking hack/build-k8s.sh (which only builds when the
// cache is empty, and says so).
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "build-k8s.sh"), "kube-apiserver", "etcd", "kubectl")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("test control plane binaries missing and hack/build-k8s.sh failed: %w (run `make envtest-assets` or set KUBEBUILDER_ASSETS)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// Start starts kube-apiserver and etcd with the CRDs from config/crd/bases.
func Start() (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the test control plane from %s: %w", assets, err)
	}
	// Tests create many objects quickly; client-go's default 5 QPS would make them
	// measure the rate limiter instead of hubfleet.
	cfg.QPS, cfg.Burst = 1000, 2000
	s := scheme.New()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Environment: env, Config: cfg, Client: c}, nil
}

// KubectlPath is the kubectl built next to kube-apiserver.
func (e *Env) KubectlPath() string { return filepath.Join(e.BinaryAssetsDirectory, "kubectl") }

// Kubeconfig writes a kubeconfig for the test control plane to dir and returns its path.
func (e *Env) Kubeconfig(dir string) (string, error) {
	user, err := e.AddUser(envtest.User{Name: "hubfleet-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// GVK of each hubfleet kind, for tests that work with unstructured objects.
var (
	VPNClusterGVK        = vpnv1alpha1.GroupVersion.WithKind("VPNCluster")
	VirtualHubGVK        = vpnv1alpha1.GroupVersion.WithKind("VirtualHub")
	ConnectionLicenseGVK = vpnv1alpha1.GroupVersion.WithKind("ConnectionLicense")
)

// DecodeObjects decodes every YAML or JSON document in data (a manifest file, the
// output of `helm template` or `kubectl kustomize`), skipping empty documents.
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return objs, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}
