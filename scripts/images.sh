#!/usr/bin/env bash
# Builds the deployables' container images, offline, into OCI archives:
# target/images/goodsmall-{user,product,order,payment,operator}.oci.tar, from
# images/Containerfile (one stage per deployable) with buildah (vfs storage, chroot
# isolation: no daemon, no registry, no base image). The base of every image is a
# root filesystem this script makes from the host: the shared libraries the binaries
# link (ldd), the CA bundle, /etc/passwd with the non-root user, /tmp. images/README.md
# says what is in them and how big they are.
#
#   scripts/images.sh                            # release build, then every image
#   scripts/images.sh --binaries target/debug    # reuse built binaries (no cargo build)
#   scripts/images.sh goodsmall-order            # only the images named
#   scripts/images.sh --out DIR                  # archives into DIR (default target/images)
#   scripts/images.sh --context-only             # only prepare DIR/context (for docker build)
#
# Load an archive with `podman load -i` / `docker load -i`, or push it:
#   skopeo copy oci-archive:target/images/goodsmall-order.oci.tar docker://registry/goodsmall-order:0.1.0
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[images.sh]\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

ALL=(goodsmall-user goodsmall-product goodsmall-order goodsmall-payment goodsmall-operator)
binaries="" out="target/images" context_only=false images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binaries) binaries="${2:?--binaries needs a folder}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --context-only) context_only=true; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      [[ " ${ALL[*]} " == *" $1 "* ]] || die "no image $1; the images are ${ALL[*]}"
      images+=("$1"); shift ;;
  esac
done
[ ${#images[@]} -gt 0 ] || images=("${ALL[@]}")

if ! $context_only && ! command -v buildah >/dev/null; then
  die "buildah is not installed: apt-get install -y buildah (or use --context-only and docker build, images/README.md)"
fi
command -v strip >/dev/null || die "strip is not installed: apt-get install -y binutils"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
# Reproducible: every file and the images' creation time carry the last commit's time.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

# --- 1. The binaries ----------------------------------------------------------------
if [ -z "$binaries" ]; then
  build=()
  for image in "${images[@]}"; do build+=(-p "$image" --bin "$image"); done
  say "building the release binaries (cargo build --release ${build[*]})"
  # Without the lint wrapper scripts/test.sh may have set: the lint is of the test build.
  env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo build --release "${build[@]}"
  binaries="${CARGO_TARGET_DIR:-target}/release"
fi
for image in "${images[@]}"; do
  [ -x "$binaries/$image" ] || die "$binaries/$image is missing: cargo build -p $image, or leave out --binaries for a release build"
done

# --- 2. The build context: rootfs/ (shared by every image) and bin/ ------------------
context="$out/context"
rm -rf "$context"
mkdir -p "$context/bin" "$context/rootfs/etc/ssl/certs" "$context/rootfs/tmp"
libraries=()
for image in "${images[@]}"; do
  # Symbols and debug info are not needed to run; a panic still names its file and line.
  strip --strip-all -o "$context/bin/$image" "$binaries/$image"
  chmod 0755 "$context/bin/$image"
  missing="$(ldd "$context/bin/$image" 2>/dev/null | awk '/=> not found/ {print $1}')"
  [ -z "$missing" ] || die "$image links $missing, which this machine does not have"
  while read -r library; do libraries+=("$library"); done < <(
    ldd "$context/bin/$image" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
# Each library at the path the binary's loader asks for (the loader itself at its
# PT_INTERP path, /lib64/ld-linux-x86-64.so.2 on x86-64), as a file, not a link.
for library in $(printf '%s\n' "${libraries[@]}" | sort -u); do
  install -D -m 0755 "$(readlink -f "$library")" "$context/rootfs$library"
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || die "no CA bundle at /etc/ssl/certs/ca-certificates.crt: apt-get install -y ca-certificates"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$context/rootfs/etc/ssl/certs/ca-certificates.crt"
# The user every image runs as (USER 65532:65532 in images/Containerfile). No shell
# exists in the images; the login shell field only says so.
printf 'root:x:0:0:root:/root:/sbin/nologin\ngoodsmall:x:65532:65532:GoodsMall:/nonexistent:/sbin/nologin\n' >"$context/rootfs/etc/passwd"
printf 'root:x:0:\ngoodsmall:x:65532:\n' >"$context/rootfs/etc/group"
# glibc's built-in files and dns lookups; /etc/hosts (the pod's) first.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$context/rootfs/etc/nsswitch.conf"
chmod 0644 "$context/rootfs/etc/passwd" "$context/rootfs/etc/group" "$context/rootfs/etc/nsswitch.conf"
chmod 1777 "$context/rootfs/tmp"
find "$context" -type d ! -path "$context/rootfs/tmp" -exec chmod 0755 {} +
find "$context" -exec touch -h -d "@$epoch" {} +
if $context_only; then
  say "build context ready in $context: docker build -f images/Containerfile --target <image> -t <image>:$version $context"
  exit 0
fi

# --- 3. The images, into OCI archives -------------------------------------------------
# A private, throw-away store: nothing is left in /var/lib/containers, and runs in
# parallel (a test, a user) do not share one.
mkdir -p "$out"
store="$(mktemp -d "$out/.buildah.XXXXXX")"
trap 'rm -rf "$store"' EXIT
buildah=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
# containerd's `ctr images import` names an OCI image only by the
# `io.containerd.image.name` annotation: a short `org.opencontainers.image.ref.name`
# (`goodsmall-user:0.1.0`, what podman and skopeo read) makes it import nothing and
# exit 0. Add the full name the kubelet asks for when the chart's registry is empty
# (`goodsmall-user:0.1.0` is `docker.io/library/goodsmall-user:0.1.0` to it).
name_for_containerd() { python3 scripts/lib/oci_name.py "$1" "$2" "$epoch"; }
for image in "${images[@]}"; do
  started=$SECONDS
  "${buildah[@]}" bud --quiet --isolation chroot --pull=never --timestamp "$epoch" \
    -f images/Containerfile --target "$image" --build-arg "VERSION=$version" \
    -t "localhost/$image:$version" "$context" >/dev/null
  rm -f "$out/$image.oci.tar"
  "${buildah[@]}" push --quiet "localhost/$image:$version" "oci-archive:$out/$image.oci.tar:$image:$version"
  name_for_containerd "$out/$image.oci.tar" "docker.io/library/$image:$version"
  "${buildah[@]}" rmi --all --force >/dev/null
  say "$out/$image.oci.tar ($((SECONDS - started)) s)"
done

# --- 4. Sizes ----------------------------------------------------------------------------
size() { numfmt --to=si --suffix=B --format='%.1f' "$1"; }
base="$(du -sb --apparent-size "$context/rootfs" | cut -f1)"
{
  printf '%-20s %10s %10s %10s %12s\n' image binary base total 'archive(gz)'
  for image in "${images[@]}"; do
    binary="$(stat -c %s "$context/bin/$image")"
    printf '%-20s %10s %10s %10s %12s\n' "$image" "$(size "$binary")" "$(size "$base")" \
      "$(size $((binary + base)))" "$(size "$(stat -c %s "$out/$image.oci.tar")")"
  done
} | tee "$out/sizes.txt" >&2
