#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine, for the chart's and the
# operator's end-to-end tests: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd + runc, the kubelet, kube-proxy (iptables), CNI bridge
# networking, CoreDNS and metrics-server. Every binary is built once from the Go module
# proxy into a cache outside the clone (scripts/cluster/binaries/go.mod pins the versions,
# scripts/cluster/metrics-server/go.mod metrics-server's; etcd, kube-apiserver and kubectl
# are scripts/envtest.sh's); runc and the CNI plugins come from Debian. scripts/cluster/README.md says why each
# setting is what it is.
#
#   scripts/cluster.sh build              # builds what is missing; prints the cache folder
#   scripts/cluster.sh up                 # starts the cluster (builds first if needed)
#   eval "$(scripts/cluster.sh env)"      # KUBECONFIG, GOODSMALL_NODE_IP, GOODSMALL_CLUSTER_BIN, ... (fails when not up)
#   scripts/cluster.sh node-ip            # the node's address alone (fails when not up)
#   scripts/cluster.sh import A.oci.tar…  # OCI archives into containerd (imagePullPolicy Never)
#   scripts/cluster.sh status             # exit 0 only when every part is healthy
#   scripts/cluster.sh down               # stops everything and removes what `up` made
#
# Settings: GOODSMALL_CACHE (default ~/.cache/goodsmall), GOODSMALL_CLUSTER_DIR (the
# state dir: kubeconfig, PKI, logs/, run/*.pid, containerd and kubelet data; default
# /tmp/goodsmall-cluster). Needs root.

# shellcheck disable=SC2034  # render() reads the settings below by name
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HERE="$ROOT/scripts/cluster"
CACHE="${GOODSMALL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/goodsmall}"
STATE="${GOODSMALL_CLUSTER_DIR:-/tmp/goodsmall-cluster}"
# `down` removes it whole.
case "$STATE" in /?*/?*) ;; *) echo "[cluster.sh] GOODSMALL_CLUSTER_DIR must be an absolute path at least two folders deep: $STATE" >&2; exit 1 ;; esac

module_version() { awk -v m="$1" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$2"; }
MODULE="$HERE/binaries"
KUBE_VERSION="$(module_version k8s.io/kubernetes "$MODULE/go.mod")"
ETCD_VERSION="$(module_version go.etcd.io/etcd/server/v3 "$MODULE/go.mod")"
CONTAINERD_VERSION="$(module_version github.com/containerd/containerd/v2 "$MODULE/go.mod")"
COREDNS_VERSION="$(module_version github.com/coredns/coredns "$MODULE/go.mod")"
METRICS_SERVER_VERSION="$(module_version sigs.k8s.io/metrics-server "$HERE/metrics-server/go.mod")"
HELM_VERSION="$(module_version helm.sh/helm/v4 "$MODULE/go.mod")"
# Bump when pause.c, the Containerfile, binaries/coredns, the module's other
# requirements or the build flags change.
BUILD_REVISION=3
CACHE_DIR="$CACHE/cluster-k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-containerd-$CONTAINERD_VERSION-coredns-$COREDNS_VERSION-metrics-server-$METRICS_SERVER_VERSION-helm-$HELM_VERSION-r$BUILD_REVISION"
BIN="$CACHE_DIR/bin"

# The node. Fixed ports are all below 32768, so they never meet the tests' free-port
# picks (the ephemeral range). The node address sits on a bridge without ports (this
# kernel has no dummy device); not loopback, since pods reach the API server through
# the `kubernetes` Service. (render() reads several of these by name.)
NODE_NAME=goodsmall-node
NODE_BRIDGE=goodsmall0
NODE_IP=10.88.0.1
NODE_CIDR=10.88.0.0/24
CNI_BRIDGE=goodsmallcni0
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
API_PORT=6443
ETCD_PORT=12379
ETCD_PEER_PORT=12380
KCM_PORT=10257
SCHEDULER_PORT=10259
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
PROXY_HEALTHZ_PORT=10256
PROXY_METRICS_PORT=10249
STREAM_PORT=10010
METRIC_RESOLUTION=10s
PAUSE_IMAGE=localhost/goodsmall/pause:1
COREDNS_IMAGE=localhost/goodsmall/coredns:$COREDNS_VERSION
METRICS_SERVER_IMAGE=localhost/goodsmall/metrics-server:$METRICS_SERVER_VERSION
CNI_BIN_DIR=/usr/lib/cni
# The host-wide kernel settings the kubelet writes; inside the node's mount namespace
# each is covered by a small file, so the host's values never change.
KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
# Host paths containerd, the CNI plugins and the kubelet write to whatever their
# configuration says; inside the node's mount namespace each is a folder of the state dir.
# (/run/containerd: shim sockets; /var/lib/cni: CNI result cache; /var/log/containers: the
# kubelet's log links; /var/lib/kubelet: its device-plugin socket; /run/mount: mount's utab.)
NODE_MOUNTS=(/run/containerd:containerd-run /var/lib/cni:cni-cache /var/log/containers:container-logs
  /var/lib/kubelet:kubelet-fixed /run/mount:mount-utab)
# Start order; `down` stops them in reverse.
PARTS=(etcd kube-apiserver kube-controller-manager kube-scheduler node-namespace containerd kubelet kube-proxy)

say() { printf '[cluster.sh] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
elapsed() { echo "$((SECONDS - ${1:-0})) s"; }

# ---------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------

go_build() { # part, module folder, ldflags, packages...: one `go build` (the parts built
  # from one module compile its packages once: each part's own stamps only change the link)
  local part="$1" dir="$2" ldflags="$3" started=$SECONDS; shift 3
  say "building $part"
  # Static, stripped binaries; module and build caches stay in Go's defaults
  # (~/go/pkg/mod, ~/.cache/go-build), so a rebuild after a version bump is incremental.
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w $ldflags" -o "$PARTIAL/bin/" "$@") \
    || die "building $part failed (see above)"
  printf '%s %s\n' "$part" "$((SECONDS - started))" >>"$PARTIAL/build-seconds.txt"
  say "built $part in $(elapsed "$started")"
}

have() { local b; for b in "$@"; do [ -x "$PARTIAL/bin/$b" ] || return 1; done; }

build_envtest() { # etcd, kube-apiserver and kubectl: scripts/envtest.sh's, from the same module
  have etcd kube-apiserver kubectl && return 0
  local envtest
  envtest="$("$ROOT/scripts/envtest.sh" build)" || die "building etcd, kube-apiserver and kubectl failed (see above)"
  cp "$envtest/etcd" "$envtest/kube-apiserver" "$envtest/kubectl" "$PARTIAL/bin/"
}

build_kube() {
  have kubelet kube-controller-manager kube-scheduler kube-proxy && return 0
  # The version stamps `make` would set, so /version and `kubectl version` tell the truth.
  local minor="${KUBE_VERSION#v1.}" stamp="" pkg
  minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  go_build "Kubernetes $KUBE_VERSION (kubelet, kube-controller-manager, kube-scheduler, kube-proxy)" "$MODULE" "$stamp" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
}

build_containerd() {
  have containerd containerd-shim-runc-v2 ctr && return 0
  local pkg=github.com/containerd/containerd/v2
  go_build "containerd $CONTAINERD_VERSION (containerd, containerd-shim-runc-v2, ctr)" "$MODULE" \
    "-X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Package=$pkg" \
    "$pkg/cmd/containerd" "$pkg/cmd/containerd-shim-runc-v2" "$pkg/cmd/ctr"
}

build_coredns() {
  have coredns && return 0
  # Ours (binaries/coredns): only the plugins the Corefile uses.
  go_build "CoreDNS $COREDNS_VERSION" "$MODULE" "" goodsmall.dev/cluster/coredns
}

build_metrics_server() {
  have metrics-server && return 0
  # Its own module: its generated OpenAPI models only match the Kubernetes libraries it
  # was released with (built against 0.37's, it panics at start: "cannot find model
  # definition for io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics").
  go_build "metrics-server $METRICS_SERVER_VERSION" "$HERE/metrics-server" \
    "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" sigs.k8s.io/metrics-server/cmd/metrics-server
}

build_helm() {
  have helm && return 0
  go_build "helm $HELM_VERSION" "$MODULE" \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    helm.sh/helm/v4/cmd/helm
}

build_pause() { # no image can be pulled: a static C program that sleeps until signalled
  have pause && return 0
  command -v gcc >/dev/null || die "gcc is missing: apt-get install -y gcc libc6-dev"
  gcc -static -Os -s -Wall -o "$PARTIAL/bin/pause" "$HERE/pause.c" || die "building pause failed (static glibc: apt-get install -y libc6-dev)"
}

build_images() { # FROM-scratch images into OCI archives (buildah: vfs storage, chroot isolation)
  local image started=$SECONDS store context
  [ -f "$PARTIAL/images/metrics-server.oci.tar" ] && return 0
  command -v buildah >/dev/null || die "buildah is missing: apt-get install -y buildah"
  store="$(mktemp -d)"
  context="$store/context"
  mkdir -p "$context" "$PARTIAL/images"
  cp "$PARTIAL/bin/pause" "$PARTIAL/bin/coredns" "$PARTIAL/bin/metrics-server" "$context/"
  local buildah=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
  for image in pause:"$PAUSE_IMAGE" coredns:"$COREDNS_IMAGE" metrics-server:"$METRICS_SERVER_IMAGE"; do
    local target="${image%%:*}" name="${image#*:}"
    "${buildah[@]}" bud --quiet --isolation chroot --pull=never --timestamp 0 -f "$HERE/Containerfile" \
      --target "$target" -t "$name" "$context" >/dev/null || { rm -rf "$store"; die "building the $target image failed"; }
    # The full name as the archive's ref.name, so `ctr images import` keeps it.
    "${buildah[@]}" push --quiet "$name" "oci-archive:$PARTIAL/images/$target.oci.tar.tmp:$name" \
      || { rm -rf "$store"; die "exporting the $target image failed"; }
    mv "$PARTIAL/images/$target.oci.tar.tmp" "$PARTIAL/images/$target.oci.tar"
  done
  "${buildah[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$store"
  printf 'images %s\n' "$((SECONDS - started))" >>"$PARTIAL/build-seconds.txt"
  say "built the pause, coredns and metrics-server images in $(elapsed "$started")"
}

debian_packages() { # runc and the CNI plugins: Debian's
  local missing=()
  command -v runc >/dev/null || missing+=(runc)
  [ -x "$CNI_BIN_DIR/bridge" ] && [ -x "$CNI_BIN_DIR/host-local" ] && [ -x "$CNI_BIN_DIR/loopback" ] \
    && [ -x "$CNI_BIN_DIR/portmap" ] || missing+=(containernetworking-plugins)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt-get)"
  apt-get install -y "${missing[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${missing[@]}" >&2; } \
    || die "apt-get install -y ${missing[*]} failed"
}

build() {
  debian_packages
  [ -f "$CACHE_DIR/.complete" ] && return 0
  command -v go >/dev/null || die "go is missing: install Go 1.26 (https://go.dev/dl)"
  say "building the cluster into $CACHE_DIR (once; about 17 minutes on 2 cores with envtest's part)"
  # Parts already built by an interrupted run are kept.
  PARTIAL="$CACHE_DIR.partial"
  mkdir -p "$PARTIAL/bin"
  local started=$SECONDS
  build_envtest
  build_kube
  build_containerd
  build_coredns
  build_metrics_server
  build_helm
  build_pause
  build_images
  rm -rf "$CACHE_DIR"; mv "$PARTIAL" "$CACHE_DIR"; touch "$CACHE_DIR/.complete"
  say "cluster built in $(elapsed "$started")"
}

# ---------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------

pid_of() { # part: its PID when it runs (the PID file's PID still runs the recorded binary)
  local file="$STATE/run/$1.pid" pid exe
  [ -f "$file" ] || return 1
  { read -r pid; read -r exe; } <"$file" || return 1
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && echo "$pid"
}

start() { # part, command...: in its own session, output to logs/part.log, PID to run/part.pid
  local part="$1"; shift
  setsid "$@" </dev/null >>"$STATE/logs/$part.log" 2>&1 9<&- &
  local pid=$! exe
  for _ in $(seq 1 100); do # until the forked shell, setsid, env, nsenter, unshare have exec'd the real binary
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || break
    case "$exe" in */bash | */setsid | */env | */nsenter | */unshare) sleep 0.02 ;; *) break ;; esac
  done
  printf '%s\n%s\n' "$pid" "$exe" >"$STATE/run/$part.pid"
}

descendants() { # pid: its children, grandchildren, ...
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do echo "$child"; descendants "$child"; done
}

running() { # pid: it exists and is not a zombie (this machine's init reaps slowly)
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

stop_pids() { # pids...: SIGTERM, up to 10 s, then SIGKILL
  local pid alive
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive=()
    for pid in "$@"; do running "$pid" && alive+=("$pid"); done
    [ ${#alive[@]} -eq 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

stop_part() { # part: it and its children
  local pid
  pid="$(pid_of "$1")" || { rm -f "$STATE/run/$1.pid"; return 0; }
  # shellcheck disable=SC2046
  stop_pids "$pid" $(descendants "$pid")
  rm -f "$STATE/run/$1.pid"
}

wait_for() { # part, seconds, what, command...: retries the command; on timeout shows the part's log
  local part="$1" seconds="$2" what="$3" deadline pid; shift 3
  deadline=$((SECONDS + seconds))
  while [ $SECONDS -lt $deadline ]; do
    "$@" >/dev/null 2>&1 && return 0
    if [ -f "$STATE/run/$part.pid" ] && ! pid_of "$part" >/dev/null; then
      say "$part exited while waiting for $what; the end of $STATE/logs/$part.log:"
      tail -n 40 "$STATE/logs/$part.log" >&2 || true
      exit 1
    fi
    sleep 0.25
  done
  say "timed out after $seconds s waiting for $what; the end of $STATE/logs/$part.log:"
  tail -n 40 "$STATE/logs/$part.log" >&2 || true
  exit 1
}

kubectl() { KUBECACHEDIR="$STATE/kube-cache" "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
ctr() { "$BIN/ctr" --address "$STATE/containerd/containerd.sock" --namespace k8s.io "$@"; }
in_node() { nsenter --mount="/proc/$(pid_of node-namespace)/ns/mnt" -- "$@"; }

render() { # template: @NAME@ replaced by $NAME
  local name args=()
  for name in STATE NODE_NAME NODE_IP NODE_CIDR CNI_BRIDGE POD_CIDR POD_GATEWAY SERVICE_CIDR DNS_IP \
    KUBELET_PORT KUBELET_HEALTHZ_PORT PROXY_HEALTHZ_PORT PROXY_METRICS_PORT STREAM_PORT PAUSE_IMAGE \
    COREDNS_IMAGE METRICS_SERVER_IMAGE METRIC_RESOLUTION CNI_BIN_DIR RUNC CA_BUNDLE; do
    args+=(-e "s|@$name@|${!name:-}|g")
  done
  sed "${args[@]}" "$1"
}

# ---------------------------------------------------------------------------------------
# up: the parts
# ---------------------------------------------------------------------------------------

pki() { # one CA for everything (plus the front proxy's), with openssl
  local dir="$STATE/pki"
  mkdir -p "$dir"; chmod 0700 "$dir"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$1.key" 2>/dev/null; }
  ca() { # name, CN
    key "$1"
    openssl req -x509 -new -key "$dir/$1.key" -subj "/CN=$2" -days 3650 -out "$dir/$1.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" 2>/dev/null
  }
  cert() { # name, CA, subject, extendedKeyUsage, subjectAltName (optional)
    key "$1"
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$4"
      [ -z "${5:-}" ] || echo "subjectAltName=$5"
    } >"$dir/$1.ext"
    openssl req -new -key "$dir/$1.key" -subj "$3" 2>/dev/null \
      | openssl x509 -req -CA "$dir/$2.crt" -CAkey "$dir/$2.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days 3650 -extfile "$dir/$1.ext" -out "$dir/$1.crt" 2>/dev/null
    rm -f "$dir/$1.ext"
  }
  ca ca goodsmall-cluster-ca
  ca front-proxy-ca goodsmall-front-proxy-ca
  cert kube-apiserver ca /CN=kube-apiserver serverAuth \
    "IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin ca /O=system:masters/CN=goodsmall-admin clientAuth
  cert kube-apiserver-kubelet-client ca /O=system:masters/CN=kube-apiserver-kubelet-client clientAuth
  cert kube-controller-manager ca /CN=system:kube-controller-manager clientAuth
  cert kube-scheduler ca /CN=system:kube-scheduler clientAuth
  cert kube-proxy ca /CN=system:kube-proxy clientAuth
  cert kubelet-client ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  # The kubelet's serving certificate, signed by the cluster CA: metrics-server and the
  # API server verify it (no insecure TLS).
  cert kubelet ca "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME,DNS:localhost"
  cert metrics-server ca /CN=metrics-server serverAuth \
    "DNS:metrics-server,DNS:metrics-server.kube-system,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local"
  cert front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
  key service-account
  openssl pkey -in "$dir/service-account.key" -pubout -out "$dir/service-account.pub" 2>/dev/null
  rm -f "$dir"/*.srl
  kubeconfig kubeconfig admin
  local part
  for part in kube-controller-manager kube-scheduler kube-proxy; do kubeconfig "$part.kubeconfig" "$part"; done
  kubeconfig kubelet.kubeconfig kubelet-client
}

kubeconfig() { # file, client certificate name: self-contained (certificates embedded)
  local b64=(base64 -w0)
  cat >"$STATE/$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: goodsmall
    cluster:
      server: https://$NODE_IP:$API_PORT
      certificate-authority-data: $("${b64[@]}" "$STATE/pki/ca.crt")
users:
  - name: $2
    user:
      client-certificate-data: $("${b64[@]}" "$STATE/pki/$2.crt")
      client-key-data: $("${b64[@]}" "$STATE/pki/$2.key")
contexts:
  - name: goodsmall
    context: {cluster: goodsmall, user: $2}
current-context: goodsmall
EOF
  chmod 0600 "$STATE/$1"
}

node_network() { # the node's address on a bridge of its own
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${NODE_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # Service and pod addresses are this machine's own: routed to the port-less node
  # bridge, so that a packet kube-proxy has no rule for yet (a Service just created, a
  # pod just gone) dies here instead of taking the default route out of the machine.
  # kube-proxy's DNAT and the CNI bridge's own route (metric 0) win over these.
  ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE" metric 4000
  ip route replace "$POD_CIDR" dev "$NODE_BRIDGE" metric 4000
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
  render "$HERE/cni.conflist" >"$STATE/cni/net.d/10-goodsmall.conflist"
}

start_etcd() {
  start etcd "$BIN/etcd" --name goodsmall --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "goodsmall=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_for etcd 30 "etcd" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}

start_apiserver() {
  local pki="$STATE/pki"
  start kube-apiserver "$BIN/kube-apiserver" \
    --advertise-address="$NODE_IP" --bind-address="$NODE_IP" --secure-port="$API_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/kube-apiserver.crt" --tls-private-key-file="$pki/kube-apiserver.key" \
    --kubelet-client-certificate="$pki/kube-apiserver-kubelet-client.crt" --kubelet-client-key="$pki/kube-apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/service-account.pub" --service-account-signing-key-file="$pki/service-account.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
    --enable-aggregator-routing=true --profiling=false
  wait_for kube-apiserver 90 "the API server to be ready" kubectl get --raw /readyz
}

start_controllers() { # kube-controller-manager and kube-scheduler (checked before the add-ons)
  local pki="$STATE/pki" kc="$STATE/kube-controller-manager.kubeconfig" ks="$STATE/kube-scheduler.kubeconfig"
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false \
    --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/service-account.key" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --client-ca-file="$pki/ca.crt" --requestheader-client-ca-file="$pki/front-proxy-ca.crt" --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$ks" --authentication-kubeconfig="$ks" --authorization-kubeconfig="$ks" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --profiling=false
}

own_mount_namespace() { # the holder runs, in a mount namespace other than the host's
  local pid
  pid="$(pid_of node-namespace)" && [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/$$/ns/mnt)" ]
}

start_node_namespace() {
  # containerd and the kubelet share a private mount namespace (held by `sleep`): their
  # mounts never reach the host, host paths they insist on are folders of the state
  # dir, and the kernel settings the kubelet writes host-wide are small files.
  local entry host own sysctl
  for entry in "${NODE_MOUNTS[@]}"; do
    host="${entry%%:*}" own="$STATE/node/${entry#*:}"
    mkdir -p "$own"
    if [ ! -d "$host" ]; then mkdir -p "$host"; echo "$host" >>"$STATE/host/created-dirs"; fi
  done
  mkdir -p "$STATE/node/sysctl" "$STATE/kubelet" "$STATE/pod-logs"
  : >"$STATE/node/resolv.conf"
  start node-namespace unshare --mount --propagation private sleep infinity
  wait_for node-namespace 5 "the node's mount namespace" own_mount_namespace
  for entry in "${NODE_MOUNTS[@]}"; do
    in_node mount --bind "$STATE/node/${entry#*:}" "${entry%%:*}"
  done
  for sysctl in "${KUBELET_SYSCTLS[@]}"; do
    [ -f "/proc/sys/$sysctl" ] || continue
    cat "/proc/sys/$sysctl" >"$STATE/node/sysctl/${sysctl//\//.}"
    in_node mount --bind "$STATE/node/sysctl/${sysctl//\//.}" "/proc/sys/$sysctl"
  done
}

start_containerd() {
  mkdir -p "$STATE/containerd"
  RUNC="$(command -v runc)" render "$HERE/containerd.toml" >"$STATE/containerd/config.toml"
  # PATH: containerd starts containerd-shim-runc-v2 from it.
  start containerd env PATH="$BIN:$PATH" nsenter --mount="/proc/$(pid_of node-namespace)/ns/mnt" -- \
    "$BIN/containerd" --config "$STATE/containerd/config.toml"
  wait_for containerd 30 "containerd" ctr version
  local image
  for image in pause coredns metrics-server; do
    import_archive "$CACHE_DIR/images/$image.oci.tar" >/dev/null
  done
}

start_kubelet() {
  render "$HERE/kubelet.yaml" >"$STATE/kubelet/config.yaml"
  start kubelet nsenter --mount="/proc/$(pid_of node-namespace)/ns/mnt" -- \
    "$BIN/kubelet" --config="$STATE/kubelet/config.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
}

start_kube_proxy() {
  render "$HERE/kube-proxy.yaml" >"$STATE/kube-proxy.yaml"
  start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"
}

node_ready() { [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
deployment_ready() { [ "$(kubectl -n kube-system get deployment "$1" -o 'jsonpath={.status.readyReplicas}' 2>/dev/null)" = 1 ]; }

start_addons() { # CoreDNS and metrics-server
  kubectl -n kube-system create secret tls metrics-server-tls \
    --cert="$STATE/pki/metrics-server.crt" --key="$STATE/pki/metrics-server.key" >/dev/null
  CA_BUNDLE="$(base64 -w0 "$STATE/pki/ca.crt")" render "$HERE/addons.yaml" | kubectl apply -f - >/dev/null
}

up() {
  [ "$(id -u)" = 0 ] || die "up needs root (network, mounts, cgroups)"
  local part running=()
  for part in "${PARTS[@]}"; do pid_of "$part" >/dev/null && running+=("$part"); done
  if [ ${#running[@]} -gt 0 ]; then
    if [ ${#running[@]} -eq ${#PARTS[@]} ]; then
      # Every part runs (others may be using it): never restart it, wait for it.
      local deadline=$((SECONDS + 120))
      until status >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { status >&2 || true; die "up but not healthy (above): scripts/cluster.sh down, then up"; }
        sleep 1
      done
      say "already up"; return 0
    fi
    # A failed `up` leaves its parts running for inspection; start afresh.
    say "partly up (${running[*]} running): taking it down first"
    down
  fi
  build
  local started=$SECONDS
  # Leftovers of a run that was not taken down (crashed, rebooted): clean first.
  [ ! -d "$STATE" ] || down 2>/dev/null
  mkdir -p "$STATE/logs" "$STATE/run" "$STATE/host"
  # What `down` restores: the CNI bridge plugin turns IPv4 forwarding on.
  cat /proc/sys/net/ipv4/ip_forward >"$STATE/host/ip_forward"
  pki
  node_network
  start_etcd
  start_apiserver
  say "API server ready after $(elapsed "$started")"
  start_controllers
  start_node_namespace
  start_containerd
  start_kubelet
  start_kube_proxy
  wait_for kubelet 90 "node $NODE_NAME to be Ready" node_ready
  say "node Ready after $(elapsed "$started")"
  wait_for kube-controller-manager 30 "kube-controller-manager" kubectl get --raw "/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt"
  wait_for kube-scheduler 30 "kube-scheduler" curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
  wait_for kube-proxy 30 "kube-proxy" curl -fsS "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
  start_addons
  wait_for kubelet 120 "CoreDNS to be Ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)" deployment_ready coredns
  say "CoreDNS Ready after $(elapsed "$started")"
  wait_for kubelet 120 "metrics-server to be Ready (kubectl -n kube-system describe pod -l k8s-app=metrics-server)" deployment_ready metrics-server
  wait_for kube-apiserver 120 "kubectl top node" kubectl top node
  say "metrics-server answering (kubectl top node) after $(elapsed "$started")"
  say "up: eval \"\$(scripts/cluster.sh env)\"; kubectl get pods -A"
}

# ---------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------

docker_name() { # image reference as the kubelet asks for it: docker.io/library/x:latest style
  local ref="$1" domain="" rest="$1"
  if [[ "$ref" == */* ]]; then
    domain="${ref%%/*}"
    if [[ "$domain" == *.* || "$domain" == *:* || "$domain" == localhost ]]; then rest="${ref#*/}"; else domain=""; fi
  fi
  if [ -z "$domain" ]; then
    domain=docker.io
    [[ "$rest" == */* ]] || rest="library/$rest"
  fi
  # No tag and no digest: latest.
  local last="${rest##*/}"
  [[ "$last" == *:* || "$last" == *@* ]] || rest="$rest:latest"
  echo "$domain/$rest"
}

import_archive() { # archive: imports it into k8s.io; prints "name digest" per image
  local archive="$1" names name digest canonical source index_ref
  [ -f "$archive" ] || die "no such archive: $archive"
  # The names the archive gives its images (containerd's own annotation first).
  names="$(tar -xOf "$archive" index.json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin).get("manifests", []):
    a = m.get("annotations") or {}
    print(a.get("io.containerd.image.name") or a.get("org.opencontainers.image.ref.name") or "-", m["digest"])
' 2>/dev/null)" || die "$archive is not an OCI archive (no index.json)"
  [ -n "$names" ] || die "$archive lists no image"
  # ctr keeps a name with a ':' or '/' as it is (goodsmall-user:0.1.0, not the
  # docker.io/library/goodsmall-user:0.1.0 the kubelet asks for), and skips names that
  # are only a tag. --digests also stores the archive's index as import-<date>@<digest>,
  # so something always refers to what was imported; each image is then tagged with
  # its normalized name and the other names go.
  ctr images import --digests "$archive" >"$STATE/logs/import.log" 2>&1 \
    || { tail -n 20 "$STATE/logs/import.log" >&2; die "ctr images import $archive failed"; }
  # (Listings are read whole before they are searched: with pipefail, a reader that
  # stops early would fail the pipeline.)
  local listing
  listing="$(ctr images ls 2>/dev/null)"
  index_ref="$(awk -v d="sha256:$(tar -xOf "$archive" index.json | sha256sum | cut -d' ' -f1)" \
    'NR > 1 && $3 == d && $1 ~ /^import-/ { print $1; exit }' <<<"$listing")"
  local imported=0
  while read -r name digest; do
    # The kubelet finds an image by name only.
    if [ "$name" = - ] || [[ "$name" != *[:/@]* ]]; then
      die "$archive: image $digest has no name (org.opencontainers.image.ref.name '$name'): export it with one, e.g. buildah push IMAGE oci-archive:FILE:NAME:TAG"
    fi
    # What now refers to this image: a name ctr gave it, else the archive's index.
    source="$(awk -v d="$digest" 'NR > 1 && $3 == d && $1 !~ /^sha256:/ && $1 !~ /^import-/ { print $1; exit }' <<<"$listing")"
    [ -n "$source" ] || source="$index_ref"
    [ -n "$source" ] || die "$archive: image $digest was not imported (see $STATE/logs/import.log)"
    canonical="$(docker_name "$name")"
    [ "$source" = "$canonical" ] || ctr images tag --force "$source" "$canonical" >/dev/null 2>&1 \
      || die "$archive: tagging $source as $canonical failed"
    [ "$name" = "$canonical" ] || ctr images rm "$name" >/dev/null 2>&1 || true
    listing="$(ctr images ls 2>/dev/null)"
    awk -v n="$canonical" 'NR > 1 && $1 == n { found = 1 } END { exit !found }' <<<"$listing" \
      || die "$archive: $canonical is missing after the import"
    echo "$canonical $digest"; imported=$((imported + 1))
  done <<<"$names"
  [ -z "$index_ref" ] || ctr images rm "$index_ref" >/dev/null 2>&1 || true
  [ "$imported" -gt 0 ] || die "$archive: nothing imported"
}

import_cmd() {
  [ $# -gt 0 ] || die "usage: scripts/cluster.sh import FILE.oci.tar..."
  pid_of containerd >/dev/null || die "containerd is not running: scripts/cluster.sh up"
  local archive
  for archive in "$@"; do import_archive "$archive"; done
}

# ---------------------------------------------------------------------------------------
# status, env
# ---------------------------------------------------------------------------------------

status() {
  local part pid healthy=0
  for part in "${PARTS[@]}"; do
    if pid="$(pid_of "$part")"; then printf '%-24s running (pid %s)\n' "$part" "$pid"
    else printf '%-24s not running\n' "$part"; healthy=1; fi
  done
  [ $healthy = 0 ] || return 1
  kubectl get --raw /readyz >/dev/null 2>&1 || { echo "API server not ready"; return 1; }
  kubectl get nodes -o wide 2>&1 || true
  kubectl get pods -A -o wide 2>&1 || true
  node_ready || { echo "node $NODE_NAME not Ready"; return 1; }
  deployment_ready coredns || { echo "CoreDNS not Ready"; return 1; }
  deployment_ready metrics-server || { echo "metrics-server not Ready"; return 1; }
}

require_up() { # callers take a failure (and an empty answer) for "no cluster"
  [ -f "$STATE/kubeconfig" ] && pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null \
    || die "the cluster is not up: scripts/cluster.sh up"
}

env_cmd() {
  require_up
  printf 'export KUBECONFIG=%q\n' "$STATE/kubeconfig"
  printf 'export GOODSMALL_NODE_IP=%q\n' "$NODE_IP"
  printf 'export GOODSMALL_CLUSTER_BIN=%q\n' "$BIN"
  printf 'export GOODSMALL_CLUSTER_DIR=%q\n' "$STATE"
  # ctr reads these: `ctr images ls` then lists the images the kubelet sees.
  printf 'export CONTAINERD_ADDRESS=%q\n' "$STATE/containerd/containerd.sock"
  printf 'export CONTAINERD_NAMESPACE=k8s.io\n'
  # kubectl's discovery cache and helm's files in the state dir, not in $HOME.
  printf 'export KUBECACHEDIR=%q\n' "$STATE/kube-cache"
  printf 'export HELM_CACHE_HOME=%q\n' "$STATE/helm/cache"
  printf 'export HELM_CONFIG_HOME=%q\n' "$STATE/helm/config"
  printf 'export HELM_DATA_HOME=%q\n' "$STATE/helm/data"
}

# ---------------------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------------------

kill_pods() { # every process in the kubelet's cgroups (the pods' containers)
  local procs
  procs="$(find /sys/fs/cgroup -path '*/kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)" || true
  # shellcheck disable=SC2086
  [ -z "$procs" ] || kill -KILL $procs 2>/dev/null || true
}

our_processes() { # this cache's binaries working on this state dir (containerd's shims, strays)
  local dir pid
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$BIN/"* ]] || continue
    [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$STATE/"* ]] && echo "$pid"
  done
}

remove_cgroups() { # the kubelet's empty kubepods folders (only those), deepest first
  local dir
  for _ in 1 2 3 4 5; do
    dir="$(find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name 'kubepods*' 2>/dev/null)"
    [ -n "$dir" ] || return 0
    find /sys/fs/cgroup -depth -mindepth 2 -type d -path '*/kubepods*' -exec rmdir {} + 2>/dev/null || true
    sleep 0.2
  done
  say "cgroup folders left (processes in them?): $dir"
}

remove_chains() { # the KUBE-* and CNI-* chains (kube-proxy's, the kubelet's, portmap's)
  local tool table rules chain rule
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null || continue
    for table in filter nat mangle raw; do
      rules="$("$tool" -w -t "$table" -S 2>/dev/null)" || continue
      # Jumps into them from the other chains, then the chains themselves.
      while read -r rule; do
        [ -n "$rule" ] || continue
        eval "$tool -w -t $table -D ${rule#-A }" 2>/dev/null || true
      done < <(grep -E '^-A ' <<<"$rules" | grep -vE '^-A (KUBE-|CNI-)' | grep -E -- '-j (KUBE-|CNI-)' || true)
      for chain in $(awk '/^-N (KUBE-|CNI-)/ { print $2 }' <<<"$rules"); do "$tool" -w -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in $(awk '/^-N (KUBE-|CNI-)/ { print $2 }' <<<"$rules"); do "$tool" -w -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
  # kube-proxy's nftables tables, should it have made any.
  if command -v nft >/dev/null; then
    for table in "ip kube-proxy" "ip6 kube-proxy"; do
      # shellcheck disable=SC2086
      nft list table $table >/dev/null 2>&1 && nft delete table $table 2>/dev/null || true
    done
  fi
}

remove_links() {
  local link
  for link in $(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
    ip link delete "$link" 2>/dev/null || true
  done
  for link in "$CNI_BRIDGE" "$NODE_BRIDGE"; do
    ip link show "$link" >/dev/null 2>&1 && ip link delete "$link" 2>/dev/null || true
  done
}

down() {
  [ "$(id -u)" = 0 ] || die "down needs root"
  local part i
  # Reverse start order; the pods' processes and the shims once the kubelet is gone.
  for ((i = ${#PARTS[@]} - 1; i >= 0; i--)); do
    part="${PARTS[$i]}"
    [ "$part" = containerd ] && kill_pods
    stop_part "$part"
  done
  # containerd's shims (they leave containerd's process tree), and strays whose PID
  # file is gone.
  kill_pods
  # shellcheck disable=SC2046
  stop_pids $(our_processes)
  remove_chains
  remove_links
  remove_cgroups
  if [ -f "$STATE/host/created-dirs" ]; then
    # The (empty) mount points `up` made for the node's namespace.
    sort -u "$STATE/host/created-dirs" | while read -r dir; do rmdir "$dir" 2>/dev/null || true; done
  fi
  if [ -f "$STATE/host/ip_forward" ]; then
    cat "$STATE/host/ip_forward" >/proc/sys/net/ipv4/ip_forward
  fi
  # Nothing of the node's namespace is mounted on the host, so this removes plain files.
  rm -rf "$STATE"
  say "down"
}

# One build, up or down at a time (tests may call them concurrently): a lock on this
# script, which the cluster's processes do not inherit (fd 9 is closed for them).
serialize() { exec 9<"$0"; flock -w 1800 9 || die "another scripts/cluster.sh build/up/down runs"; }

case "${1:-}" in
  build) serialize; build; echo "$CACHE_DIR" ;;
  up) serialize; up ;;
  down) serialize; down ;;
  status) status ;;
  env) env_cmd ;;
  node-ip) require_up; echo "$NODE_IP" ;;
  import) shift; import_cmd "$@" ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
