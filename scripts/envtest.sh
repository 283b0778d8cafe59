#!/usr/bin/env bash
# The Kubernetes control plane of the operator's tests, envtest style (no kubelet, so no
# pods run, but every API object, CRD, CEL rule, subresource, Lease and RBAC rule is
# real): etcd, kube-apiserver and a matching kubectl, built once from the Go module proxy
# into a cache outside the clone (scripts/cluster/binaries/go.mod pins the versions: the
# module scripts/cluster.sh builds the node from, so the two builds share their
# compiled packages), with KEDA's ScaledObject CRD beside them.
#
#   scripts/envtest.sh build    # builds what is missing; prints the folder of the binaries
#   scripts/envtest.sh path     # prints that folder (exit 1 when not built yet)
#
# Settings: GOODSMALL_CACHE (default ~/.cache/goodsmall).
set -euo pipefail
MODULE="$(cd "$(dirname "$0")" && pwd)/cluster/binaries"
CACHE="${GOODSMALL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/goodsmall}"
module_version() { awk -v m="$1" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$2"; }
KUBE_VERSION="$(module_version k8s.io/kubernetes "$MODULE/go.mod")"
ETCD_VERSION="$(module_version go.etcd.io/etcd/server/v3 "$MODULE/go.mod")"
[ -n "$KUBE_VERSION" ] && [ -n "$ETCD_VERSION" ] || { echo "[envtest.sh] cannot read the versions from $MODULE/go.mod" >&2; exit 1; }
# KEDA's own ScaledObject CRD (its module carries it under config/crd/), for the
# operator's KEDA scaling test.
KEDA_VERSION=v2.21.0
# Bump when the module's other requirements or the build flags change.
BUILD_REVISION=2
BIN="$CACHE/envtest-kube-$KUBE_VERSION-etcd-$ETCD_VERSION-keda-$KEDA_VERSION-r$BUILD_REVISION"

die() { printf '[envtest.sh] %s\n' "$*" >&2; exit 1; }

build() {
  [ -f "$BIN/.complete" ] && return 0
  local started=$SECONDS
  command -v go >/dev/null || die "go is missing: install Go 1.26 (https://go.dev/dl) or apt-get install -y golang-go (1.26+)"
  printf '[envtest.sh] building etcd %s, kube-apiserver and kubectl %s into %s (once; about 10 minutes on 2 cores)\n' \
    "$ETCD_VERSION" "$KUBE_VERSION" "$BIN" >&2
  rm -rf "$BIN.partial"; mkdir -p "$BIN.partial"
  # Static, stripped binaries; the module cache and build cache stay in Go's defaults
  # (~/go/pkg/mod, ~/.cache/go-build), so a rebuild after a version bump is incremental.
  # The version stamps `make` would set, so `kubectl version` and /version tell the truth.
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}" stamp=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  (cd "$MODULE" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w" -o "$BIN.partial/etcd" go.etcd.io/etcd/server/v3) \
    || die "building etcd failed (see above)"
  (cd "$MODULE" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w$stamp" -o "$BIN.partial/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl) \
    || die "building kube-apiserver and kubectl failed (see above)"
  local keda
  keda="$(GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  cp "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" "$BIN.partial/" || die "no ScaledObject CRD in KEDA $KEDA_VERSION"
  rm -rf "$BIN"; mv "$BIN.partial" "$BIN"; touch "$BIN/.complete"
  printf '[envtest.sh] built in %s s\n' "$((SECONDS - started))" >&2
}

case "${1:-}" in
  build) build; echo "$BIN" ;;
  path) [ -f "$BIN/.complete" ] || die "not built yet: scripts/envtest.sh build"; echo "$BIN" ;;
  *) die "usage: envtest.sh build | envtest.sh path" ;;
esac
