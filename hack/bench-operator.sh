#!/usr/bin/env bash
# Operator benchmark against the envtest control plane (kube-apiserver + etcd
# built from source by hack/build-k8s.sh): 100 members, 10,000 dynamic hubs.
# Results go to docs/benchmarks-operator.md by hand. Flags pass through, e.g.
#   hack/bench-operator.sh -trials 40 -steady 60s
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/build-k8s.sh kube-apiserver etcd kubectl 2>/dev/null | tail -1)}"
go build -o bin/bench-operator ./hack/bench-operator
echo "go: $(go version | cut -d' ' -f3), cores: $(nproc), date: $(date -u +%F)"
exec bin/bench-operator "$@"
