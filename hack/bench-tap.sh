#!/usr/bin/env bash
# Throughput of the real client path: iperf3 TCP between two namespaces whose
# TAPs belong to two `hubfleet connect` clients of one member (loopback, inside
# a namespace of its own), against plain veth between two namespaces in the
# same run. See hack/bench-tap/main.go.
#
#   hack/bench-tap.sh                    # this tree, 3 runs × 10 s, 1 and 4 streams
#   BASELINE=HEAD~1 hack/bench-tap.sh    # also a binary built from another commit, alternately
#   BASELINE_BIN=/tmp/hf hack/bench-tap.sh   # a baseline binary built already
#   RUNS=1 TIME=5 hack/bench-tap.sh      # quicker
#   PERF_DIR=/tmp/prof hack/bench-tap.sh # perf record member and clients (apt-get install linux-perf)
#   FLOOR=1 hack/bench-tap.sh            # also the path's floor (hack/tapfloor): no crypto, and
#                                        # AES-GCM at all four ends as ours (docs/benchmarks-tap.md)
#
# When the client has --offload, a "legacy" variant runs both clients without
# offloads (the software segmentation fallback), and a "mixed" one only the
# receiver, so one run shows every path. Root; the iperf3 package.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
cleanup() {
  [[ -n ${wt:-} ]] && git worktree remove --force "$wt" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# This script measures the TLS path: a binary with the UDP data channel
# (issue #14, hack/bench-udp.sh measures that) runs with --udp=false.
tls_only() { if "$1" connect -h 2>&1 | grep -q -- '-udp'; then echo "--udp=false"; fi; }

echo "bench-tap: building hubfleet from this tree" >&2
CGO_ENABLED=0 go build -trimpath -o "$work/hubfleet" .
t=$(tls_only "$work/hubfleet")
variants="head=$work/hubfleet,$t,$t"
if "$work/hubfleet" connect -h 2>&1 | grep -q -- '-offload'; then
  variants+=";mixed=$work/hubfleet,$t,$t --offload=false;legacy=$work/hubfleet,$t --offload=false,$t --offload=false"
fi
if [[ -n ${BASELINE:-} ]]; then
  wt="$work/baseline-src"
  git worktree add --detach "$wt" "$BASELINE" >/dev/null 2>&1
  echo "bench-tap: building hubfleet at $BASELINE ($(git -C "$wt" rev-parse --short HEAD))" >&2
  (cd "$wt" && CGO_ENABLED=0 go build -trimpath -o "$work/hubfleet-base" .)
  t=$(tls_only "$work/hubfleet-base")
  variants+=";base-$(git -C "$wt" rev-parse --short HEAD)=$work/hubfleet-base,$t,$t"
fi
if [[ -n ${BASELINE_BIN:-} ]]; then
  t=$(tls_only "$BASELINE_BIN")
  variants+=";base=$BASELINE_BIN,$t,$t"
fi
if [[ -n ${FLOOR:-} ]]; then
  echo "bench-tap: building hack/tapfloor (the floor of the path)" >&2
  CGO_ENABLED=0 go build -trimpath -o "$work/tapfloor" ./hack/tapfloor
  variants+=";floor=$work/tapfloor;floor-sealed=$work/tapfloor,--seal,--seal"
fi
go run ./hack/bench-tap -variants "$variants" -runs "${RUNS:-3}" -time "${TIME:-10}" -streams "${STREAMS:-1,4}" ${PERF_DIR:+-perf "$PERF_DIR"}
