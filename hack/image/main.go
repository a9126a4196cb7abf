// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Command image builds a container image tarball from one static binary, without a
// Docker daemon: no engine runs on the machines this project is developed and tested
// on, and `ctr images import` only needs a tarball.
//
// The image is the binary in a single layer on an empty base (plus a minimal
// /etc/passwd, /etc/group and /tmp so that a non-root user has a name and a scratch
// directory), with the binary as entrypoint and a non-root user by default. Every
// timestamp is fixed, so the same binary always gives the same image digest.
//
// Usage:
//
//	go run ./hack/image -binary bin/hubfleet -out dist/hubfleet.tar [-name hubfleet:dev] [-user 65532]
//	go run ./hack/image -pause -out dist/pause.tar      # builds ./hack/image/pause itself
//	go run ./hack/image -program ./hack/image/testserver -name localhost/hubfleet/testserver:dev -out t.tar
//
// The output is a `docker save` style tarball that `ctr -n k8s.io images import`
// and `docker load` accept.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PauseImage is the sandbox ("pause") image of the local cluster. It lives under the
// localhost registry on purpose: if containerd ever tried to pull it, the attempt
// would go to this machine's own loopback and fail, never to a remote registry.
const PauseImage = "localhost/hubfleet/pause:dev"

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	binary     string
	program    string
	pause      bool
	out        string
	name       string
	user       string
	entrypoint string
	args       multiFlag
	labels     multiFlag
	env        multiFlag
	arch       string
	created    time.Time
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "static `path` to package (linux, the -arch architecture)")
	flag.StringVar(&o.program, "program", "", "Go `package` to build statically and package instead of -binary (e.g. ./hack/image/testserver)")
	flag.BoolVar(&o.pause, "pause", false, "build the pause (sandbox) image from ./hack/image/pause: sets -program, -name "+PauseImage+" and -user 65535 unless given")
	flag.StringVar(&o.out, "out", "", "output tarball `path` (required)")
	flag.StringVar(&o.name, "name", "", "image `reference` written into the tarball (default hubfleet:dev)")
	flag.StringVar(&o.user, "user", "", "`uid[:gid]` the entrypoint runs as (default 65532)")
	flag.StringVar(&o.entrypoint, "entrypoint", "", "`path` of the binary inside the image (default /<binary name>)")
	flag.Var(&o.args, "arg", "default argument (Cmd) after the entrypoint; repeatable")
	flag.Var(&o.labels, "label", "image label `key=value`; repeatable")
	flag.Var(&o.env, "env", "environment `KEY=value`; repeatable")
	flag.StringVar(&o.arch, "arch", "amd64", "image architecture (the binary must match)")
	epoch := flag.Int64("created", sourceDateEpoch(), "image creation time, Unix `seconds` (default $SOURCE_DATE_EPOCH or 0, for reproducible digests)")
	flag.Parse()
	o.created = time.Unix(*epoch, 0).UTC()
	if err := run(&o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func sourceDateEpoch() int64 {
	if v, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return v
	}
	return 0
}

func run(o *options) error {
	if o.pause {
		if o.program == "" && o.binary == "" {
			o.program = "./hack/image/pause"
		}
		if o.name == "" {
			o.name = PauseImage
		}
		if o.user == "" {
			// 65535 is the conventional user of pause images.
			o.user = "65535"
		}
	}
	if o.name == "" {
		o.name = "hubfleet:dev"
	}
	if o.user == "" {
		o.user = "65532"
	}
	if o.out == "" {
		return errors.New("-out is required")
	}
	if (o.binary == "") == (o.program == "") {
		return errors.New("exactly one of -binary, -program or -pause is required")
	}
	uid, gid, err := parseUser(o.user)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(o.name)
	if err != nil {
		return fmt.Errorf("-name %q: %w", o.name, err)
	}

	if o.program != "" {
		tmp, err := os.MkdirTemp("", "hubfleet-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.binary = filepath.Join(tmp, path.Base(strings.TrimRight(o.program, "/")))
		if err := buildStatic(o.program, o.binary, o.arch); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return err
	}
	if err := checkStatic(o.binary, o.arch); err != nil {
		return err
	}
	if o.entrypoint == "" {
		o.entrypoint = "/" + filepath.Base(o.binary)
	}
	if !path.IsAbs(o.entrypoint) {
		return fmt.Errorf("-entrypoint %q must be an absolute path", o.entrypoint)
	}

	layerTar, err := buildLayer(bin, o.entrypoint, uid, gid, o.created)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
		// BestSpeed: the tarball is imported on this machine right away; a few MiB
		// more on disk costs less than seconds of gzip on every `make run`.
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Author:    "hubfleet hack/image",
			Created:   v1.Time{Time: o.created},
			CreatedBy: "hack/image " + filepath.Base(o.binary),
			Comment:   "static binary on an empty base",
		},
	})
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture = o.arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: o.created}
	cf.Author = "hubfleet"
	cf.Config.Entrypoint = []string{o.entrypoint}
	cf.Config.Cmd = append([]string(nil), o.args...)
	cf.Config.User = o.user
	cf.Config.WorkingDir = "/"
	cf.Config.Env = append([]string{"PATH=/"}, o.env...)
	labels, err := parseLabels(o)
	if err != nil {
		return err
	}
	cf.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	tmpOut := o.out + ".tmp"
	if err := tarball.WriteToFile(tmpOut, tag, img); err != nil {
		os.Remove(tmpOut)
		return err
	}
	if err := os.Rename(tmpOut, o.out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "image: wrote %s (%s, %s, user %s, %d MiB binary)\n", o.out, o.name, digest, o.user, len(bin)>>20)
	return nil
}

func parseUser(u string) (uid, gid int, err error) {
	us, gs, hasGID := strings.Cut(u, ":")
	if uid, err = strconv.Atoi(us); err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("-user %q: want a numeric uid[:gid] (Kubernetes' runAsNonRoot can only verify numeric users)", u)
	}
	gid = uid
	if hasGID {
		if gid, err = strconv.Atoi(gs); err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("-user %q: numeric gid wanted", u)
		}
	}
	return uid, gid, nil
}

func parseLabels(o *options) (map[string]string, error) {
	labels := map[string]string{
		"org.opencontainers.image.title":       strings.TrimPrefix(path.Base(o.entrypoint), "/"),
		"org.opencontainers.image.source":      "https://github.com/hubfleet/hubfleet",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     o.created.Format(time.RFC3339),
		"org.opencontainers.image.ref.name":    o.name,
		"org.opencontainers.image.base.name":   "scratch",
		"org.opencontainers.image.description": "hubfleet static binary on an empty base",
	}
	for _, l := range o.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-label %q: want key=value", l)
		}
		labels[k] = v
	}
	return labels, nil
}

// buildStatic compiles a Go package of this module as a static Linux binary, so that
// it runs on the empty base (no libc, no loader).
func buildStatic(pkg, out, arch string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// checkStatic refuses binaries that need a dynamic loader or shared libraries: on an
// empty base they would fail at exec with a confusing "no such file or directory".
func checkStatic(p, arch string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s: not an ELF binary: %w", p, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if want == 0 {
		return fmt.Errorf("unsupported -arch %q", arch)
	}
	if f.Machine != want {
		return fmt.Errorf("%s is built for %v, not %s", p, f.Machine, arch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (has an ELF interpreter); build it with CGO_ENABLED=0", p)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v; build it with CGO_ENABLED=0", p, libs)
	}
	return nil
}

type layerEntry struct {
	mode int64
	body []byte
	dir  bool
}

// buildLayer writes the single layer: the binary plus the few files a non-root
// process expects. Entries are sorted and timestamps fixed for reproducibility.
func buildLayer(bin []byte, entrypoint string, uid, gid int, mtime time.Time) ([]byte, error) {
	userName := "nonroot"
	if uid == 0 {
		userName = "root"
	}
	files := map[string]layerEntry{
		"etc":  {mode: 0o755, dir: true},
		"tmp":  {mode: 0o1777, dir: true},
		"home": {mode: 0o755, dir: true},
		"etc/passwd": {mode: 0o644, body: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", userName, uid, gid, userName, userName))},
		"etc/group": {mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, gid))},
	}
	if uid != 0 {
		files["home/"+userName] = layerEntry{mode: 0o700, dir: true}
	}
	entry := strings.TrimPrefix(path.Clean(entrypoint), "/")
	for d := path.Dir(entry); d != "."; d = path.Dir(d) {
		if _, ok := files[d]; !ok {
			files[d] = layerEntry{mode: 0o755, dir: true}
		}
	}
	files[entry] = layerEntry{mode: 0o755, body: bin}

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		f := files[n]
		h := &tar.Header{Name: n, Mode: f.mode, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.dir {
			h.Name += "/"
			h.Typeflag = tar.TypeDir
			h.Size = 0
		}
		if n == "home/"+userName {
			h.Uid, h.Gid = uid, gid
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if !f.dir {
			if _, err := tw.Write(f.body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
