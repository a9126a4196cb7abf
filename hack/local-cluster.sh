#!/usr/bin/env bash
# hack/local-cluster.sh — a real single-node Kubernetes on this machine, for `make run`
# and the end-to-end tests: kube-apiserver, etcd, kube-controller-manager,
# kube-scheduler, kubelet and kube-proxy built from the Go module proxy
# (hack/build-k8s.sh), containerd, runc and the CNI plugins from Debian's packages,
# and our own images built without a Docker daemon (hack/image). kind cannot run
# here: there is no container engine and no image registry.
#
# Usage: hack/local-cluster.sh up | down [--purge] | status | run | load <tarball> |
#                              images | check-clean | env
#   up           start everything, wait until the node is Ready and the cluster is usable
#   down         stop everything this script started and remove what it added
#                (state is removed; logs stay in <dir>/logs unless --purge)
#   status       processes, memory (RSS) and node state
#   run          `make run`: up, build and import the hubfleet image, deploy config/,
#                apply the samples, show them, follow the operator log; Ctrl-C tears down
#   load TAR     import an image tarball into containerd's k8s.io namespace
#   images       build and import the hubfleet image (bin/hubfleet)
#   check-clean  exit 1 and list anything a previous run left behind
#   env          print the export line for KUBECONFIG
#
# Everything — state, sockets, certificates, kubeconfigs, logs — lives under one
# directory, ${HUBFLEET_CLUSTER_DIR:-/tmp/hubfleet-cluster}; see docs/local-cluster.md.
#
# Network containment (this machine must never send packets elsewhere): pods sit on
# our own bridge without masquerading and without a default route; the service range
# is virtual and routed onto that bridge; iptables FORWARD drops anything between the
# bridge and any other interface; pods get no DNS servers; images are never pulled
# (imported, and any pull attempt is pointed at loopback).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${HUBFLEET_CLUSTER_DIR:-/tmp/hubfleet-cluster}
CACHE=${HUBFLEET_CACHE:-$HOME/.cache/hubfleet}

# Addresses: 198.18.0.0/15 is reserved for network benchmarking (RFC 2544) and is not
# routed on the Internet, so it cannot clash with a real network here. The bridge
# address doubles as node IP and API server address: it is local to this machine
# and reachable from pods, unlike loopback (which Endpoints may not contain).
NODE=hubfleet-node
BRIDGE=hfbr0
NODE_IP=198.18.0.1
POD_CIDR=198.18.0.0/24
SERVICE_CIDR=198.19.0.0/24
KUBERNETES_SVC_IP=198.19.0.1
APISERVER_PORT=6443
APISERVER=https://$NODE_IP:$APISERVER_PORT
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
CGROUP_ROOT=hubfleet
PAUSE_IMAGE=localhost/hubfleet/pause:dev
HUBFLEET_IMAGE=${HUBFLEET_IMAGE:-hubfleet:dev}
K8S_BINARIES=(kube-apiserver etcd kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)

# Paths that containerd, runc, the CNI plugins or the kubelet create whatever their
# configuration says. Those that do not exist before `up` are recorded and removed
# by `down`; those that existed are never touched.
ALWAYS_CREATED=(/var/log/containers /var/log/pods /var/lib/cni /run/containerd /var/run/netns /run/netns
  /opt/containerd /var/lib/kubelet /var/lib/containerd /etc/cni /opt/cni /etc/kubernetes /var/run/kubernetes /run/runc)

SOCK=$DIR/run/containerd.sock
KUBECONFIG_FILE=$DIR/kubeconfig
T0=$(date +%s.%N)

# ---------------------------------------------------------------- output helpers

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# Progress goes to stderr and, once the state directory exists, to
# <dir>/logs/local-cluster.log: a teardown whose terminal is gone (Ctrl-C also kills a
# `| tee`) still leaves a record, and a failed write never stops it.
log() {
  local line
  line=$(printf '[local-cluster %6ss] %s' "$(elapsed "$T0")" "$*")
  printf '%s\n' "$line" >&2 2>/dev/null || true
  if [ -d "$DIR/logs" ]; then printf '%s %s\n' "$(date -u +%FT%TZ)" "$line" >>"$DIR/logs/local-cluster.log" 2>/dev/null || true; fi
}
die() { log "ERROR: $*"; exit 1; }

STEP_NAME="" STEP_T=""
step() {
  step_end
  STEP_NAME=$1 STEP_T=$(date +%s.%N)
  log "… $STEP_NAME"
}
step_end() {
  if [ -n "$STEP_NAME" ]; then
    local d; d=$(elapsed "$STEP_T")
    log "✓ $STEP_NAME (${d}s)"
    [ -d "$DIR/state" ] && printf '%-44s %6ss\n' "$STEP_NAME" "$d" >>"$DIR/state/timings"
  fi
  STEP_NAME=""
}

# poll DEADLINE_SECONDS DESCRIPTION COMMAND... — run COMMAND every 0.2 s until it
# succeeds; fail with DESCRIPTION after the deadline. Conditions, never fixed sleeps.
poll() {
  local deadline=$1 what=$2; shift 2
  local end; end=$(awk -v n="$(date +%s.%N)" -v d="$deadline" 'BEGIN { printf "%.3f", n + d }')
  until "$@" >/dev/null 2>&1; do
    if awk -v n="$(date +%s.%N)" -v e="$end" 'BEGIN { exit !(n > e) }'; then
      log "timed out after ${deadline}s waiting for: $what"
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- processes

kctl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

k8s_bin() {
  # build-k8s.sh reuses the cached binaries (the same cache as the envtest assets)
  # and builds only what is missing; its last stdout line is the bin directory.
  BIN=$("$ROOT/hack/build-k8s.sh" "${K8S_BINARIES[@]}" | tail -1)
  [ -x "$BIN/kubelet" ] || die "hack/build-k8s.sh did not produce $BIN/kubelet"
}

# proc_is_ours PID — true when PID is alive (not a zombie) and its command line
# names our state directory: every daemon we start gets $DIR in its arguments, so
# a reused PID or a process of anyone else never matches.
proc_is_ours() {
  local pid=$1 state
  [ -r "/proc/$pid/cmdline" ] || return 1
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

pid_of() { [ -f "$DIR/pids/$1" ] && cat "$DIR/pids/$1"; }

running() { local pid; pid=$(pid_of "$1") && proc_is_ours "$pid"; }

# start NAME COMMAND... — a daemon in its own session (so Ctrl-C on `make run`
# reaches only this script, which then stops everything in order), output to
# <dir>/logs/NAME.log, PID to <dir>/pids/NAME.
start() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name"
}

all_gone() {
  local p
  for p in "$@"; do proc_is_ours "$p" && return 1; done
  return 0
}

# stop GRACE NAME... — SIGTERM to all of them at once, wait up to GRACE seconds for
# all, then SIGKILL whatever is left. Independent daemons stop in parallel: each
# takes seconds on a busy machine.
stop() {
  local grace=$1; shift
  local n pid pids=() names=()
  for n in "$@"; do
    pid=$(pid_of "$n") || continue
    if proc_is_ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid") names+=("$n")
    fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    if ! poll "$grace" "${names[*]} to exit after SIGTERM" all_gone "${pids[@]}"; then
      for pid in "${pids[@]}"; do
        if proc_is_ours "$pid"; then log "killing pid $pid"; kill -KILL "$pid" 2>/dev/null || true; fi
      done
      poll 10 "${names[*]} to exit after SIGKILL" all_gone "${pids[@]}" || true
    fi
    # Reap them if they are our children (make run), so they do not linger as zombies.
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
  for n in "$@"; do rm -f "$DIR/pids/$n"; done
}

# Our processes found by what they run and what they name: containerd's shims are
# started by containerd, not by us, so they have no PID file; they carry our socket
# path in their arguments.
stray_pids() {
  local p
  # One `find` lists every process's executable (a fork per process is slow on a busy
  # machine); only the candidates get the closer look of proc_is_ours.
  for p in $(find /proc -mindepth 2 -maxdepth 2 -name exe \( -lname "$CACHE/k8s/*/bin/*" -o -lname '*/containerd' \
    -o -lname '*/containerd-shim*' -o -lname '*/runc' \) -printf '%h\n' 2>/dev/null | cut -d/ -f3); do
    [ "$p" = $$ ] && continue
    proc_is_ours "$p" && echo "$p"
  done
  return 0
}

# Processes inside our cgroup subtree: the pods' containers. They are ours by
# construction (only our kubelet places processes there).
cgroup_pids() {
  local d
  for d in $(cgroup_dirs); do
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

# ---------------------------------------------------------------- cgroups

cgroup_dirs() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    [ -d "/sys/fs/cgroup/$CGROUP_ROOT" ] && echo "/sys/fs/cgroup/$CGROUP_ROOT"
  else
    awk '$3 == "cgroup" { print $2 }' /proc/mounts | while read -r m; do
      [ -d "$m/$CGROUP_ROOT" ] && echo "$m/$CGROUP_ROOT"
    done
  fi
  return 0
}

# The kubelet puts every pod under cgroupRoot=/hubfleet instead of the host's root
# cgroup, so `down` removes exactly one subtree and nothing of anyone else's.
make_cgroups() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p "/sys/fs/cgroup/$CGROUP_ROOT"
    local c
    for c in cpuset cpu io memory hugetlb pids; do
      grep -qw "$c" /sys/fs/cgroup/cgroup.controllers && echo "+$c" >"/sys/fs/cgroup/$CGROUP_ROOT/cgroup.subtree_control" 2>/dev/null || true
    done
  else
    awk '$3 == "cgroup" { print $2 }' /proc/mounts | while read -r m; do
      mkdir -p "$m/$CGROUP_ROOT"
      # A new v1 cpuset cgroup starts with no CPUs and no memory nodes; nothing
      # could run in it until they are copied from the parent.
      if [ -f "$m/cpuset.cpus" ]; then
        cat "$m/cpuset.cpus" >"$m/$CGROUP_ROOT/cpuset.cpus"
        cat "$m/cpuset.mems" >"$m/$CGROUP_ROOT/cpuset.mems"
      fi
    done
  fi
}

remove_cgroups() {
  local d pids
  pids=$(cgroup_pids)
  if [ -n "$pids" ]; then
    log "killing leftover pod processes in our cgroups: $(echo $pids)"
    kill -KILL $pids 2>/dev/null || true
    poll 10 "pod processes to exit" test -z "$(cgroup_pids)" || true
  fi
  for d in $(cgroup_dirs); do
    # Children first; rmdir (not rm) is how cgroups are removed.
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$d" ] && log "warning: could not remove cgroup $d"
  done
  return 0
}

# ---------------------------------------------------------------- network

ipt_rules() {
  # One place for our rules: `up` adds them, `down` deletes exactly these.
  echo "-i $BRIDGE ! -o $BRIDGE -m comment --comment hubfleet-local-cluster -j DROP"
  echo "! -i $BRIDGE -o $BRIDGE -m comment --comment hubfleet-local-cluster -j DROP"
}

setup_network() {
  local f=$DIR/state/orig
  mkdir -p "$f"
  cat /proc/sys/net/ipv4/ip_forward >"$f/ip_forward"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    echo "$BRIDGE" >"$DIR/state/bridge-created"
  fi
  # No IPv6 on the bridge: nothing here uses it, and it would only add link-local chatter.
  sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1" 2>/dev/null || true
  ip addr replace "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The service range is virtual. Routing it onto our bridge means a Service IP that
  # kube-proxy has not programmed yet goes nowhere, instead of out of the default route.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
  echo "$SERVICE_CIDR" >"$DIR/state/route-added"
  # Service traffic between pods on the bridge must traverse iptables (kube-proxy's
  # DNAT); this is the kernel default where br_netfilter is loaded.
  if [ -f /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    cat /proc/sys/net/bridge/bridge-nf-call-iptables >"$f/bridge-nf-call-iptables"
    sysctl -qw net.bridge.bridge-nf-call-iptables=1
  else
    modprobe br_netfilter 2>/dev/null || die "br_netfilter is not available: Services cannot work between pods"
    echo 1 >"$DIR/state/br_netfilter-loaded"
  fi
  # The rules go into mangle FORWARD, which the kernel traverses before filter
  # FORWARD, where kube-proxy puts its own jumps (KUBE-FORWARD accepts established and
  # marked traffic) in front of anything already there; and into filter FORWARD too.
  # One iptables-restore per family (--noflush keeps every other rule): each iptables
  # call costs a rule-set round trip, which is slow on a busy machine.
  local r t ipt
  echo 1 >"$DIR/state/iptables-added"
  for ipt in iptables ip6tables; do
    for t in mangle filter; do
      echo "*$t"
      while read -r r; do echo "-I FORWARD 1 $r"; done < <(ipt_rules)
      echo COMMIT
    done | "$ipt-restore" -w --noflush
  done
}

teardown_network() {
  local r l f=$DIR/state/orig
  for l in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
    ip link del "$l" 2>/dev/null || true
  done
  if [ -f "$DIR/state/bridge-created" ] && ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
  fi
  [ -f "$DIR/state/route-added" ] && ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  if [ -f "$DIR/state/iptables-added" ]; then
    # Exactly the rules carrying our comment, wherever they ended up in the chain.
    local t ipt
    for ipt in iptables ip6tables; do
      for t in mangle filter; do
        { "$ipt" -w -t "$t" -S FORWARD 2>/dev/null | grep -- '--comment hubfleet-local-cluster' || true; } | sed 's/^-A /-D /' |
          while read -r r; do
            # shellcheck disable=SC2086 # the rule is a list of arguments
            "$ipt" -w -t "$t" $r || true
          done
      done
    done
  fi
  [ -f "$f/ip_forward" ] && sysctl -qw "net.ipv4.ip_forward=$(cat "$f/ip_forward")"
  [ -f "$f/bridge-nf-call-iptables" ] && [ -f /proc/sys/net/bridge/bridge-nf-call-iptables ] &&
    sysctl -qw "net.bridge.bridge-nf-call-iptables=$(cat "$f/bridge-nf-call-iptables")"
  rm -f "$DIR/state/bridge-created" "$DIR/state/route-added" "$DIR/state/iptables-added"
  return 0
}

# kube_chains — every KUBE-* chain, as "<iptables|ip6tables> <table> <chain>" lines.
kube_chains() {
  local ipt t
  for ipt in iptables ip6tables; do
    for t in filter nat mangle; do
      "$ipt" -w -t "$t" -S 2>/dev/null | awk -v p="$ipt $t" '$1 == "-N" && $2 ~ /^KUBE-/ { print p, $2 }'
    done
  done
  return 0
}

# remove_kube_chains — the KUBE-* chains that did not exist before `up` were made by
# our kube-proxy (or kubelet). `kube-proxy --cleanup` removes most but deliberately
# keeps KUBE-FIREWALL, which it shares with kubelets; we remove what is left.
remove_kube_chains() {
  [ -f "$DIR/state/kube-chains-before" ] || return 0
  local new ipt t c rule
  new=$(kube_chains | grep -vxF -f "$DIR/state/kube-chains-before" || true)
  [ -n "$new" ] || return 0
  # Jumps into our chains first (from any chain), then flush all, then delete all:
  # our chains reference each other.
  while read -r ipt t c; do
    "$ipt" -w -t "$t" -S 2>/dev/null | grep -E -- "-j $c( |\$)" | sed 's/^-A /-D /' | while read -r rule; do
      eval "\"\$ipt\" -w -t \"\$t\" $rule" 2>/dev/null || true
    done
  done <<<"$new"
  while read -r ipt t c; do "$ipt" -w -t "$t" -F "$c" 2>/dev/null || true; done <<<"$new"
  while read -r ipt t c; do "$ipt" -w -t "$t" -X "$c" 2>/dev/null || true; done <<<"$new"
}

# Network namespaces of our pod sandboxes that the CNI teardown did not remove.
our_netns() {
  local n
  [ -f "$DIR/state/netns-before" ] || return 0
  for n in /var/run/netns/cni-* /run/netns/cni-*; do
    [ -e "$n" ] || continue
    grep -qxF "$(readlink -f "$n")" "$DIR/state/netns-before" || readlink -f "$n"
  done | sort -u
}

remove_netns() {
  local n
  for n in $(our_netns); do
    umount "$n" 2>/dev/null || umount -l "$n" 2>/dev/null || true
    # Not fatal: the rest of the teardown still runs, and check-clean names it.
    rm -f "$n" 2>/dev/null || log "warning: cannot remove $n (a mount made over /run/netns after containerd started hides its nsfs mount: see prepare_netns_dir)"
  done
}

# ---------------------------------------------------------------- mounts & paths

our_mounts() {
  # Field 5 of mountinfo is the mount point; deepest first so nested mounts go first.
  awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2- | uniq
}

unmount_ours() {
  local m
  for m in $(our_mounts); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
  done
}

record_paths() {
  local p
  : >"$DIR/state/created-paths"
  for p in "${ALWAYS_CREATED[@]}"; do
    [ -e "$p" ] || [ -L "$p" ] || echo "$p" >>"$DIR/state/created-paths"
  done
  kube_chains >"$DIR/state/kube-chains-before"
  { ls -d /var/run/netns/cni-* /run/netns/cni-* 2>/dev/null || true; } | xargs -r readlink -f | sort -u >"$DIR/state/netns-before"
}

remove_created_paths() {
  local p
  [ -f "$DIR/state/created-paths" ] || return 0
  while read -r p; do
    [ -n "$p" ] && { [ -e "$p" ] || [ -L "$p" ]; } || continue
    # A mount point there (e.g. /run/netns made shared by iproute2) goes first.
    while mountpoint -q "$p" 2>/dev/null; do umount "$p" 2>/dev/null || umount -l "$p" || break; done
    rm -rf "$p"
  done <"$DIR/state/created-paths"
}

# ---------------------------------------------------------------- prerequisites

ensure_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v curl >/dev/null || need+=(curl)
  command -v setsid >/dev/null || need+=(util-linux)
  command -v ip >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} from Debian's packages"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
}

build_tools() {
  TOOLS=$CACHE/local-cluster/bin
  mkdir -p "$TOOLS"
  (cd "$ROOT" && go build -o "$TOOLS/hubfleet-image" ./hack/image && go build -o "$TOOLS/hubfleet-pki" ./hack/local-cluster/pki)
}

# Fail early and clearly when another program holds one of our fixed ports (the
# component would otherwise die with the reason buried in its log).
preflight_ports() {
  local port busy=""
  for port in $ETCD_CLIENT_PORT $ETCD_PEER_PORT 10248 10249 10250 10256 10257 10259 $APISERVER_PORT; do
    if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
      busy+=" $port"
    fi
  done
  [ -z "$busy" ] || die "TCP port(s)$busy already in use by another program (ss -ltnp); the local cluster needs them"
}

# ---------------------------------------------------------------- configuration

write_configs() {
  mkdir -p "$DIR"/{containerd/certs.d,cni/net.d,cni/ipam,kubelet,pod-logs,runc,apiserver,kcm,scheduler}

  # Any image pull goes to the loopback address instead of a registry: images are
  # imported, never pulled, and nothing may leave this machine.
  local reg
  for reg in _default docker.io registry.k8s.io localhost; do
    mkdir -p "$DIR/containerd/certs.d/$reg"
    printf 'server = "http://127.0.0.1:9"\n\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n' \
      >"$DIR/containerd/certs.d/$reg/hosts.toml"
  done

  cat >"$DIR/containerd/config.toml" <<EOF
# containerd for the hubfleet local cluster: every path under $DIR.
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This machine lacks CAP_SYS_RESOURCE: without this, runc fails every pod sandbox
  # ("can't get final child's PID from pipe: EOF") trying to lower oom_score_adj.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$DIR/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$DIR/containerd/certs.d"
EOF

  # Bridge without masquerading; pods get a route to the service range only (no
  # default route), so traffic for anywhere else fails in the pod itself.
  cat >"$DIR/cni/net.d/10-hubfleet.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "hubfleet-local",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "$SERVICE_CIDR" }]
      }
    }
  ]
}
EOF

  cat >"$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $DIR/pki/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $DIR/pki/kubelet-serving.crt
tlsPrivateKeyFile: $DIR/pki/kubelet-serving.key
containerRuntimeEndpoint: unix://$SOCK
# Kubelet 1.35+ refuses cgroup v1 unless told otherwise; this machine has only v1.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failSwapOn: false
# Else the kubelet adds iptables chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) and leaves them behind.
makeIPTablesUtilChains: false
# No cluster DNS: pods must not inherit the host's resolvers (they are off this machine).
resolvConf: ""
clusterDomain: cluster.local
podLogsDir: $DIR/pod-logs
# Imported images cannot be pulled again: never garbage-collect them, and never evict
# pods for disk usage on a developer machine.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
  imagefs.inodesFree: "0%"
serializeImagePulls: false
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
# The e2e failover test kills member containers over and over; the default crash-loop
# backoff (10 s doubling to 5 min) would make every further restart wait longer.
crashLoopBackOff: { maxContainerRestartPeriod: 2s }
rotateCertificates: false
EOF

  cat >"$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $DIR/kube-proxy.kubeconfig }
hostnameOverride: $NODE
mode: iptables
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts only on our bridge address, never on the machine's real interfaces.
nodePortAddresses: ["$NODE_IP/32"]
iptables: { minSyncPeriod: 200ms, syncPeriod: 30s }
# Zero leaves the host's conntrack sysctls as they are.
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOF
}

# ---------------------------------------------------------------- components

start_etcd() {
  mkdir -p "$DIR/etcd"
  start etcd "$BIN/etcd" --name hubfleet --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "hubfleet=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
  # --unsafe-no-fsync: a throwaway cluster on a shared, noisy disk; fsync latency
  # would dominate start-up and nothing here must survive a power cut.
}

# iproute2 makes /run/netns a shared bind mount of itself the first time
# `ip netns add` runs. If that happens after containerd has put its pod
# sandboxes' namespaces there (a client namespace made by a test, by
# `make run`'s user), those nsfs mounts end up beneath the new mount: the CNI
# teardown unmounts nothing, unlinking them fails with "device or resource
# busy", and every pod hangs in Terminating. Make the mount as iproute2 would,
# before containerd starts (remove_created_paths undoes it when we made it).
prepare_netns_dir() {
  mkdir -p /run/netns
  mountpoint -q /run/netns && return 0
  mount --bind /run/netns /run/netns || die "cannot bind-mount /run/netns onto itself"
  mount --make-shared /run/netns || die "cannot make /run/netns a shared mount"
}

start_containerd() {
  prepare_netns_dir
  start containerd containerd --config "$DIR/containerd/config.toml" --log-level warn
}

start_apiserver() {
  local p=$DIR/pki
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address "$NODE_IP" --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
    --cert-dir "$DIR/apiserver" --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --client-ca-file "$p/ca.crt" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$p/ca.crt" --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true --profiling=false --event-ttl 1h
}

start_controllers() {
  local p=$DIR/pki
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --cert-dir "$DIR/kcm" --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --allocate-node-cidrs=true --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --cert-dir "$DIR/scheduler" --leader-elect=false --profiling=false
  start kubelet "$BIN/kubelet" --config "$DIR/kubelet/config.yaml" --kubeconfig "$DIR/kubelet.kubeconfig" \
    --root-dir "$DIR/kubelet" --cert-dir "$DIR/kubelet/pki" --hostname-override "$NODE" --node-ip "$NODE_IP"
  echo 1 >"$DIR/state/kube-proxy-started"
  start kube-proxy "$BIN/kube-proxy" --config "$DIR/kube-proxy.yaml"
}

etcd_healthy() { curl -fsS -m 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() {
  curl -fsS -m 2 --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" "$APISERVER/readyz" | grep -qx ok
}
containerd_ready() { ctr --address "$SOCK" version; }
node_ready() {
  [ "$(kctl --request-timeout=3s get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
service_programmed() { iptables -w -t nat -S KUBE-SERVICES 2>/dev/null | grep -q -- "-d $KUBERNETES_SVC_IP/32"; }
default_sa() { kctl --request-timeout=3s get serviceaccount default -n default; }

# Dump the tail of every log so a failed start explains itself (CI has no shell).
show_logs() {
  local f
  for f in "$DIR"/logs/*.log; do
    [ -f "$f" ] || continue
    echo "----- ${f##*/} (last 15 lines)" >&2
    tail -n 15 "$f" >&2
  done
}

require_alive() {
  local n
  for n in "$@"; do running "$n" || { log "$n exited; its log follows"; tail -n 30 "$DIR/logs/$n.log" >&2; return 1; }; done
}

wait_for() {  # wait_for DEADLINE WHAT COMPONENTS-THAT-MUST-STAY-UP -- COMMAND...
  local deadline=$1 what=$2; shift 2
  local comps=()
  while [ "$1" != -- ]; do comps+=("$1"); shift; done
  shift
  local end=$(($(date +%s) + deadline))
  until "$@" >/dev/null 2>&1; do
    require_alive "${comps[@]}" || return 1
    [ "$(date +%s)" -lt "$end" ] || { log "timed out after ${deadline}s waiting for: $what"; return 1; }
    sleep 0.2
  done
}

# ---------------------------------------------------------------- images

load_image() {
  local tar=$1
  [ -f "$tar" ] || die "no such image tarball: $tar"
  ctr --address "$SOCK" -n k8s.io images import "$tar" >&2
}

build_hubfleet_image() {
  local version commit
  version=$(cd "$ROOT" && git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
  commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
  (cd "$ROOT" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
    -ldflags "-s -w -X github.com/hubfleet/hubfleet/pkg/version.Version=$version -X github.com/hubfleet/hubfleet/pkg/version.Commit=$commit" \
    -o bin/hubfleet .)
  "$TOOLS/hubfleet-image" -binary "$ROOT/bin/hubfleet" -out "$ROOT/dist/hubfleet-image.tar" -name "$HUBFLEET_IMAGE" \
    -label "org.opencontainers.image.version=$version" -label "org.opencontainers.image.revision=$commit"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  [ "$(id -u)" = 0 ] || die "needs root (network, cgroups, mounts)"
  if running kube-apiserver && running kubelet; then
    log "already up (state in $DIR)"
    export_hint
    return 0
  fi
  if [ -d "$DIR/state" ] || [ -d "$DIR/pids" ]; then
    log "leftovers of an earlier run in $DIR: cleaning up first"
    cmd_down
  fi
  rm -rf "${DIR:?}"/{state,pids,run}
  mkdir -p "$DIR"/{state,pids,logs,run}
  : >"$DIR/state/timings"
  # Logs of the previous run would confuse whoever reads these.
  rm -f "$DIR"/logs/*.log
  # If anything fails from here on, take down what was started.
  # shellcheck disable=SC2154 # rc is assigned inside the trap itself
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed (exit $rc)"; show_logs; log "cleaning up"; cmd_down; fi' EXIT

  step "prerequisites (packages, Kubernetes binaries, tools)"
  ensure_packages
  k8s_bin
  echo "$BIN" >"$DIR/state/bin"
  build_tools
  local t_start; t_start=$(date +%s.%N)

  preflight_ports

  step "certificates and kubeconfigs"
  "$TOOLS/hubfleet-pki" -dir "$DIR" -server "$APISERVER" -node "$NODE" -node-ip "$NODE_IP" -service-ip "$KUBERNETES_SVC_IP"
  "$TOOLS/hubfleet-image" -pause -out "$DIR/state/pause.tar" &
  local pause_build=$!

  step "network (bridge $BRIDGE, routes, FORWARD isolation) and cgroups"
  record_paths
  setup_network
  make_cgroups
  write_configs

  step "etcd and containerd"
  start_etcd
  start_containerd
  wait_for 30 "etcd health" etcd -- etcd_healthy

  step "kube-apiserver ready"
  start_apiserver
  wait_for 30 "containerd" containerd -- containerd_ready
  wait "$pause_build" || die "building the pause image failed"
  load_image "$DIR/state/pause.tar"
  wait_for 60 "kube-apiserver /readyz" kube-apiserver etcd -- apiserver_ready

  step "controller-manager, scheduler, kubelet, kube-proxy; node Ready"
  start_controllers
  wait_for 60 "node $NODE Ready" kubelet containerd kube-apiserver -- node_ready
  step_end
  local t_ready; t_ready=$(elapsed "$t_start")
  log "node $NODE Ready ${t_ready}s after start (prerequisites excluded)"

  step "kube-proxy programmed Services; default ServiceAccount"
  wait_for 60 "kube-proxy rules for the kubernetes Service" kube-proxy -- service_programmed
  wait_for 60 "ServiceAccount default/default" kube-controller-manager -- default_sa
  step_end
  printf '%-44s %6ss\n' "TOTAL start -> node Ready" "$t_ready" >>"$DIR/state/timings"
  printf '%-44s %6ss\n' "TOTAL start -> usable" "$(elapsed "$t_start")" >>"$DIR/state/timings"
  trap - EXIT
  log "cluster up. Timings:"
  sed 's/^/    /' "$DIR/state/timings" >&2
  export_hint
}

export_hint() {
  [ -n "${BIN:-}" ] || BIN=$(cat "$DIR/state/bin" 2>/dev/null || echo "$CACHE/k8s/<version>/bin")
  log "use it with:  export KUBECONFIG=$KUBECONFIG_FILE   (kubectl: $BIN/kubectl)"
}

cmd_down() {
  local purge=${1:-}
  if [ ! -d "$DIR" ]; then
    log "nothing to stop: $DIR does not exist"
    return 0
  fi
  local t; t=$(date +%s.%N)
  log "stopping the local cluster in $DIR"
  # Controllers and the kubelet first, so nothing recreates pods while they are
  # being stopped.
  stop 15 kube-controller-manager kube-scheduler kube-proxy kubelet
  log "stopped controller-manager, scheduler, kube-proxy, kubelet"

  # Pod containers: stop and delete them through containerd (the kubelet is gone).
  if running containerd; then
    local ids id
    ids=$(ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null || true)
    if [ -n "$ids" ]; then
      log "stopping $(echo "$ids" | wc -w) containers"
      for id in $ids; do ctr --address "$SOCK" -n k8s.io tasks kill -s SIGTERM "$id" >/dev/null 2>&1 || true; done
      poll 10 "containers to stop" tasks_all_stopped || true
      for id in $ids; do ctr --address "$SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
      poll 10 "containers to stop after SIGKILL" tasks_all_stopped || true
      for id in $ids; do ctr --address "$SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true; done
    fi
    for id in $(ctr --address "$SOCK" -n k8s.io containers ls -q 2>/dev/null || true); do
      ctr --address "$SOCK" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  # kube-apiserver before etcd: the other way round it hangs retrying etcd.
  stop 20 containerd kube-apiserver
  stop 15 etcd
  log "stopped containerd, kube-apiserver, etcd"
  # Whatever still names our state directory: containerd's shims (containerd starts
  # them, they outlive it) or a daemon whose PID file was lost.
  local p leftovers
  leftovers=$(stray_pids)
  if [ -n "$leftovers" ]; then
    for p in $leftovers; do log "stopping leftover $(tr '\0' ' ' </proc/"$p"/cmdline | cut -c1-80)… (pid $p)"; done
    kill -TERM $leftovers 2>/dev/null || true
    # shellcheck disable=SC2046 # a list of PIDs
    poll 10 "leftover processes to exit" no_strays || { kill -KILL $(stray_pids) 2>/dev/null || true; }
  fi

  # kube-proxy removes its own chains (KUBE-* in filter, nat and mangle); only our
  # kube-proxy ran here, so these are ours.
  if [ -f "$DIR/state/kube-proxy-started" ] && [ -x "$(cat "$DIR/state/bin")/kube-proxy" ]; then
    "$(cat "$DIR/state/bin")/kube-proxy" --cleanup >>"$DIR/logs/kube-proxy-cleanup.log" 2>&1 ||
      log "kube-proxy --cleanup reported errors (see $DIR/logs/kube-proxy-cleanup.log)"
    rm -f "$DIR/state/kube-proxy-started"
  fi
  remove_kube_chains

  remove_cgroups
  remove_netns
  teardown_network
  unmount_ours
  remove_created_paths
  local keep=logs
  [ "$purge" = --purge ] && keep=""
  find "$DIR" -mindepth 1 -maxdepth 1 ${keep:+! -name "$keep"} -exec rm -rf {} +
  [ "$purge" = --purge ] && rmdir "$DIR" 2>/dev/null
  log "down in $(elapsed "$t")s${keep:+ (logs kept in $DIR/logs)}"
  leftover_report || true
}

tasks_all_stopped() { ! ctr --address "$SOCK" -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 { print $3 }' | grep -qv STOPPED; }
no_strays() { [ -z "$(stray_pids)" ]; }

# leftover_report — everything a run could leave behind; prints it, false if any.
leftover_report() {
  local out=""
  local p
  p=$(stray_pids); [ -z "$p" ] || out+="processes: $(echo $p)"$'\n'
  p=$(cgroup_dirs); [ -z "$p" ] || out+="cgroups: $(echo $p)"$'\n'
  p=$(our_mounts); [ -z "$p" ] || out+="mounts: $(echo $p)"$'\n'
  p=$(our_netns); [ -z "$p" ] || out+="network namespaces: $(echo $p)"$'\n'
  ip link show "$BRIDGE" >/dev/null 2>&1 && out+="interface: $BRIDGE"$'\n'
  p=$({ iptables -w -S; iptables -w -t nat -S; iptables -w -t mangle -S; ip6tables -w -S; ip6tables -w -t mangle -S; } 2>/dev/null | grep -E 'hubfleet-local-cluster|KUBE-' || true)
  [ -z "$p" ] || out+="iptables: $(echo "$p" | head -5 | tr '\n' ';')"$'\n'
  ip route show "$SERVICE_CIDR" 2>/dev/null | grep -q . && out+="route: $SERVICE_CIDR"$'\n'
  if [ -n "$out" ]; then
    log "LEFTOVERS:"
    printf '%s' "$out" | sed 's/^/    /' >&2
    return 1
  fi
  return 0
}

cmd_check_clean() {
  if leftover_report; then
    log "clean: no processes, cgroups, mounts, namespaces, interfaces, routes or iptables rules of ours"
  else
    return 1
  fi
}

cmd_status() {
  local n pid total=0 rss
  printf '%-26s %8s %10s\n' COMPONENT PID RSS_MiB
  for n in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
    pid=$(pid_of "$n" 2>/dev/null || true)
    if [ -n "$pid" ] && proc_is_ours "$pid"; then
      rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
      total=$((total + rss))
      printf '%-26s %8s %10.1f\n' "$n" "$pid" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
    else
      printf '%-26s %8s %10s\n' "$n" - "not running"
    fi
  done
  local shims=0 shim_rss=0 pods_rss=0
  for pid in $(stray_pids); do
    case "$(readlink "/proc/$pid/exe")" in */containerd-shim*) ;; *) continue ;; esac
    shims=$((shims + 1)); shim_rss=$((shim_rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")))
  done
  for pid in $(cgroup_pids); do
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    pods_rss=$((pods_rss + ${rss:-0}))
  done
  printf '%-26s %8s %10.1f\n' "containerd shims" "$shims" "$(awk -v k="$shim_rss" 'BEGIN { print k / 1024 }')"
  printf '%-26s %8s %10.1f\n' "pod processes" "" "$(awk -v k="$pods_rss" 'BEGIN { print k / 1024 }')"
  printf '%-26s %8s %10.1f\n' TOTAL "" "$(awk -v k="$((total + shim_rss + pods_rss))" 'BEGIN { print k / 1024 }')"
  if running kube-apiserver; then
    BIN=$(cat "$DIR/state/bin")
    kctl get nodes -o wide 2>/dev/null || true
  fi
}

# demo_connect_command waits for the sample cluster (config/samples: VPNCluster
# default/demo, NodePort Service, user alice) to be Available and prints the exact
# `hubfleet connect` that joins its static hub from the host through the client
# Service's node port, pinning the cluster CA by fingerprint.
demo_connect_command() {
  kctl get vpncluster -n default demo >/dev/null 2>&1 || return 1
  kctl wait -n default vpncluster/demo --for=condition=Available --timeout=120s >/dev/null 2>&1 || return 1
  local port fp
  port=$(kctl get service -n default demo -o jsonpath='{.spec.ports[0].nodePort}')
  fp=$(kctl get vpncluster -n default demo -o jsonpath='{.status.caFingerprint}')
  [ -n "$port" ] && [ -n "$fp" ] || return 1
  # The samples' users Secret holds the hash of this demo password.
  echo hubfleet-demo > "$DIR/demo-password"
  chmod 600 "$DIR/demo-password"
  echo "$ROOT/bin/hubfleet connect --server $NODE_IP:$port --hub default/office --user alice --password-file $DIR/demo-password --ca-fingerprint $fp --tap hfdemo0"
}

cmd_run() {
  cmd_up
  # From here on Ctrl-C (or any failure) stops everything that `up` started.
  # During the teardown: no output may kill us (SIGPIPE when the reader of our output
  # died with the same Ctrl-C) and a second Ctrl-C must not cut it short.
  trap 'trap - EXIT; trap "" INT TERM HUP PIPE; log "stopping (Ctrl-C or exit); this takes a few seconds"; cmd_down' EXIT
  trap 'exit 130' INT TERM HUP

  step "build and import the hubfleet image ($HUBFLEET_IMAGE)"
  build_tools
  build_hubfleet_image
  load_image "$ROOT/dist/hubfleet-image.tar"

  local manifests=${HUBFLEET_MANIFESTS:-$ROOT/config/default}
  step "deploy the operator ($manifests)"
  [ -f "$manifests/kustomization.yaml" ] || die "$manifests/kustomization.yaml does not exist (yet)"
  # The kustomization names the image hubfleet:dev; make sure the pod uses exactly the
  # tag we imported and never tries to pull.
  kctl kustomize "$manifests" |
    sed -E "s#^(\s*image:\s*)[\"']?hubfleet:dev[\"']?\s*\$#\1$HUBFLEET_IMAGE#; s#^(\s*imagePullPolicy:\s*)Always\s*\$#\1IfNotPresent#" |
    kctl apply --server-side --force-conflicts -f - >&2
  # A fresh cluster has no Deployments of its own (no CoreDNS), so every one there now
  # came from the manifests; the operator is the one named like it, else the first.
  local deploys d ns deploy
  deploys=$(kctl get deployments -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}')
  [ -n "$deploys" ] || die "no Deployment after applying $manifests"
  for d in $deploys; do
    if ! kctl rollout status -n "${d%%/*}" "deployment/${d#*/}" --timeout=120s >&2; then
      kctl get pods -n "${d%%/*}" -o wide >&2 || true
      kctl describe pods -n "${d%%/*}" >&2 || true
      kctl logs -n "${d%%/*}" "deployment/${d#*/}" --all-containers --tail=50 >&2 || true
      die "deployment $d did not become Ready"
    fi
  done
  d=$(echo "$deploys" | grep -m1 operator || echo "$deploys" | head -1)
  ns=${d%%/*} deploy=deployment/${d#*/}
  step_end

  if [ -d "$ROOT/config/samples" ]; then
    step "samples (config/samples)"
    if [ -f "$ROOT/config/samples/kustomization.yaml" ]; then
      kctl apply -k "$ROOT/config/samples" >&2
    else
      kctl apply -f "$ROOT/config/samples" >&2
    fi
    # So that the listing below shows where the hubs run: new dynamic hubs
    # wait for all members to start (WaitingForMembers) before they are placed.
    kctl wait --for=condition=Ready virtualhubs --all -A --timeout=90s >&2 ||
      log "not every sample hub is Ready after 90 s; see kubectl describe virtualhubs -A"
    step_end
  fi
  connect_hint=$(demo_connect_command || true)
  echo
  kctl get vpnclusters,virtualhubs,connectionlicenses -A -o wide 2>&1 || true
  echo
  echo "KUBECONFIG for this cluster:  export KUBECONFIG=$KUBECONFIG_FILE"
  echo "kubectl:                      $BIN/kubectl"
  if [ -n "$connect_hint" ]; then
    echo "Join the demo's static hub from this host (password hubfleet-demo, in $DIR/demo-password):"
    echo "  $connect_hint"
  fi
  echo "Following the operator log ($ns/$deploy); Ctrl-C stops the cluster."
  echo
  # Follow in the background and wait: bash runs the INT trap only between
  # commands, and `wait` returns at once on a signal, a foreground command would not.
  while :; do
    kctl logs -n "$ns" -f "$deploy" --all-containers &
    wait $! || true
    # The log ends when the pod is replaced; follow the new one once it is up.
    log "operator log ended; following again when $deploy is available"
    kctl rollout status -n "$ns" "$deploy" --timeout=300s >/dev/null 2>&1 &
    wait $! || true
  done
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down "${1:-}" ;;
    status) cmd_status ;;
    run) cmd_run ;;
    load)
      [ $# -eq 1 ] || die "usage: $0 load <image tarball>"
      running containerd || die "the local cluster is not up"
      load_image "$1"
      ;;
    images)
      running containerd || die "the local cluster is not up"
      build_tools
      build_hubfleet_image
      load_image "$ROOT/dist/hubfleet-image.tar"
      ;;
    check-clean) cmd_check_clean ;;
    env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

# Sourcing the file (for tests) defines the functions without running anything.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
