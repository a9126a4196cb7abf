#!/usr/bin/env bash
# Builds the helm binary from the Go module proxy (release downloads cannot be fetched
# here) into $HUBFLEET_CACHE/tools, once; prints its path on the last stdout line.
set -euo pipefail
version=${HELM_VERSION:-v3.22.0}
cache=${HUBFLEET_CACHE:-$HOME/.cache/hubfleet}
dir="$cache/tools/helm-$version"
if [ ! -x "$dir/helm" ]; then
  echo "build-helm: building helm $version from the Go module proxy (a few minutes, once)" >&2
  mkdir -p "$dir"
  (cd /tmp && GOBIN="$dir" CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$version")
fi
echo "$dir/helm"
