#!/usr/bin/env bash
# Copyright 2026 The hubfleet authors.
# Licensed under the Apache License, Version 2.0 (see LICENSE).
#
# bench-udp.sh: iperf3 TCP through the tunnel over an emulated WAN, the UDP
# data channel against the TLS path (hubfleet connect --udp=false) in the same
# run, at 0 %, 0.5 % and 2 % loss (each way) with 20 ms and 80 ms RTT, and the
# issue #14 target point (1 %, 40 ms). Client A sits behind the WAN
# (test/netns/udpwan: this kernel has no sch_netem), client B on a plain
# veth; the iperf3 server runs on B's TAP address. Needs root, /dev/net/tun,
# iproute2, iptables, conntrack and iperf3. Everything runs in hfudp-*
# namespaces that the test removes.
#
#   hack/bench-udp.sh [seconds per run, default 10] [output table file]
#
# Environment:
#   HUBFLEET_BENCH_ONLY="40ms/1 20ms/0"  these RTT/loss% settings only (any
#                                        values; repeat one to run it again)
#   HUBFLEET_BENCH_CC=reno               TCP congestion control of every
#                                        namespace (default: the host's, logged;
#                                        a namespace may only pick one in
#                                        net.ipv4.tcp_allowed_congestion_control)
#   HUBFLEET_BENCH_SYSCTLS="net.ipv4.tcp_wmem=4096 16384 16777216"
#                                        more settings for every namespace (";"
#                                        between them)
#   HUBFLEET_BENCH_MTUS="1500 1419"      TAP MTUs of both clients, in turn
#   HUBFLEET_BENCH_BASE_BIN=/tmp/hf-old  a second hubfleet binary for the
#                                        clients, in turn with this tree's:
#                                        before and after a change, one run
#
# Results go to docs/benchmarks-udp.md by hand, with the machine's state.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
out="${2:-/tmp/bench-udp.md}"
HUBFLEET_BENCH_UDP=1 HUBFLEET_BENCH_SECONDS="$secs" HUBFLEET_BENCH_OUT="$out" \
	go test -count=1 -run '^TestUDPBenchmark$' -v -timeout 40m ./test/netns/ 2>&1 |
	grep -v '^\s*time=' | grep -E 'udp_bench_test|^(---|ok|FAIL|PASS)' || true
echo "table: $out"
cat "$out"
