// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package main

import (
	"archive/tar"
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestHubfleetImage builds the hubfleet image as `make image` does — the
// static binary, then the tarball — and reads it back the way a container
// runtime would: the config must say non-root (65532), run /hubfleet, and the
// layer must hold the binary and a passwd entry for the user.
func TestHubfleetImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image holds a linux binary; checkStatic needs it built for the host")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hubfleet")
	// The same flags as `make image`, minus the version stamp.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "hubfleet-image.tar")
	o := &options{binary: bin, out: out, name: "hubfleet:dev", arch: runtime.GOARCH}
	o.labels = multiFlag{"org.opencontainers.image.version=v-test"}
	if err := run(o); err != nil {
		t.Fatalf("building the image: %v", err)
	}

	tag, _ := name.NewTag("hubfleet:dev")
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("the tarball is not a loadable image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532" {
		t.Errorf("image user %q, want 65532 (non-root, what the chart's runAsUser expects)", c.User)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/hubfleet" {
		t.Errorf("entrypoint %v, want [/hubfleet]", c.Entrypoint)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if c.Labels["org.opencontainers.image.version"] != "v-test" {
		t.Errorf("labels %v", c.Labels)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want the one layer", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	var passwd string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		if h.Name == "etc/passwd" {
			b, _ := io.ReadAll(tr)
			passwd = string(b)
		}
	}
	if h := files["hubfleet"]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("no executable /hubfleet in the layer")
	}
	if h := files["tmp/"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("no world-writable /tmp")
	}
	found := false
	for sc := bufio.NewScanner(strings.NewReader(passwd)); sc.Scan(); {
		found = found || strings.HasPrefix(sc.Text(), "nonroot:x:65532:65532:")
	}
	if !found {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
}

// TestDockerfileNonRoot: the Dockerfile's image runs as the same user as the
// daemonless one, so the chart's securityContext fits both.
func TestDockerfileNonRoot(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var from, user string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "FROM":
			from, user = f[1], "" // USER applies per stage: the last stage counts
		case len(f) >= 2 && f[0] == "USER":
			user = f[1]
		}
	}
	if user != "65532:65532" {
		t.Errorf("the Dockerfile's final stage runs as %q, want 65532:65532", user)
	}
	if !strings.HasPrefix(from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want distroless static", from)
	}
}
