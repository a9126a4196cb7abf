#!/usr/bin/env bash
# Builds Kubernetes and etcd binaries from the Go module proxy, because setup-envtest,
# kind images and release downloads cannot be fetched on these machines.
#
# The version comes from go.mod's k8s.io/api (v0.Y.Z -> Kubernetes v1.Y.Z). `go install
# k8s.io/kubernetes/cmd/...@v1.Y.Z` refuses (kubernetes' go.mod has replace directives
# pointing into its staging tree), so we build from a throwaway module outside the repo
# that requires k8s.io/kubernetes and replaces every staging module with v0.Y.Z.
#
# Binaries are cached in $HUBFLEET_CACHE (default ~/.cache/hubfleet), one folder per
# version, and reused when present: the first build takes ~15 minutes on 2 cores.
#
# Usage: hack/build-k8s.sh [binary ...]   (default: kube-apiserver etcd kubectl)
# Prints the bin directory on the last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
api_version=$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/api)
minor=${api_version#v0.}; minor=${minor%%.*}
patch=${api_version##*.}
k8s_version="v1.${minor}.${patch}"
cache=${HUBFLEET_CACHE:-$HOME/.cache/hubfleet}
bindir="$cache/k8s/$k8s_version/bin"
mkdir -p "$bindir"

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(kube-apiserver etcd kubectl)

missing=()
for b in "${wanted[@]}"; do
  [ -x "$bindir/$b" ] || missing+=("$b")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "build-k8s: cached $k8s_version: ${wanted[*]}" >&2
  echo "$bindir"
  exit 0
fi

# Throwaway module, outside the work tree so the repo's go.mod is never touched.
mod="$cache/k8s/$k8s_version/module"
mkdir -p "$mod"
if [ ! -f "$mod/go.sum.done" ]; then
  echo "build-k8s: preparing build module for Kubernetes $k8s_version in $mod" >&2
  kmod=$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$kmod")
  etcd_version=$(sed -n 's#^\s*go.etcd.io/etcd/server/v3 \(v[0-9.]*\).*#\1#p' "$kmod")
  {
    echo "module hubfleet.local/k8sbuild"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/').0"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $k8s_version"
    echo "	go.etcd.io/etcd/server/v3 $etcd_version"
    echo ")"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m v0.${minor}.${patch}"; done
    echo ")"
  } > "$mod/go.mod"
  cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  echo "build-k8s: resolving modules (go mod tidy)" >&2
  (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >&2)
  touch "$mod/go.sum.done"
fi

vpkg=k8s.io/component-base/version
cpkg=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in $vpkg $cpkg; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

for b in "${missing[@]}"; do
  case "$b" in
    etcd) pkg=go.etcd.io/etcd/server/v3 ;;
    *) pkg=k8s.io/kubernetes/cmd/$b ;;
  esac
  start=$(date +%s)
  echo "build-k8s: building $b ($pkg) ... (cold builds take minutes; this prints when done)" >&2
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bindir/$b.tmp.$$" "$pkg")
  mv "$bindir/$b.tmp.$$" "$bindir/$b" # per-process name: two builds at once (CI and a test) must not take each other's file
  echo "build-k8s: built $b in $(( $(date +%s) - start ))s" >&2
done
echo "$bindir"
