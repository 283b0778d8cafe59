#!/usr/bin/env bash
# The previous release of GoodsMall, for the upgrade test (cluster/tests/pods/upgrade.rs):
# the source, chart and five images at the commit pinned in cluster/previous-release,
# built once into ~/.cache/goodsmall/previous-release/<commit>/ (a few minutes on 2
# cores the first time; the build's dependencies stay in previous-release/target for
# the next pinned commit). Prints that folder, which holds:
#   src/                 the release's source (its chart: src/helm/goodsmall)
#   images/*.oci.tar     its images, built by its own scripts/images.sh from debug
#                        binaries (as the tests build the current ones), named for
#                        containerd docker.io/library/<image>:<tag>
#   tag                  that tag: previous-<commit>, so both releases' images can sit
#                        side by side in the node's containerd
#
#   scripts/previous-release.sh          # builds it unless built; prints the folder
#   scripts/previous-release.sh path     # prints the folder (exit 1 when not built yet)
#
# One build at a time: a second caller (the upgrade test, while scripts/test.sh builds it
# in the background) waits for the first and then finds it built.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[previous-release.sh]\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

commit="$(sed -n 's/^commit: *//p' cluster/previous-release)"
[ -n "$commit" ] || die "cluster/previous-release names no commit (a line 'commit: <sha>')"
cache="${GOODSMALL_CACHE:-$HOME/.cache/goodsmall}/previous-release"
dir="$cache/$commit"
case "${1:-build}" in
  build) ;;
  path) [ -f "$dir/done" ] || die "not built yet: scripts/previous-release.sh"; echo "$dir"; exit 0 ;;
  *) die "usage: previous-release.sh [build | path]" ;;
esac
if [ -f "$dir/done" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 1800 9 || die "another scripts/previous-release.sh has held $cache/.lock for 30 minutes"
if [ -f "$dir/done" ]; then # built by the caller we waited for
  echo "$dir"
  exit 0
fi
git cat-file -e "$commit^{commit}" 2>/dev/null \
  || die "commit $commit (cluster/previous-release) is not in this clone; a shallow clone lacks it: git fetch --unshallow"

say "building the previous release ($commit) into $dir (once)"
started=$SECONDS
rm -rf "$dir"
mkdir -p "$dir/src"
git archive "$commit" | tar -x -C "$dir/src"
images=(goodsmall-user goodsmall-product goodsmall-order goodsmall-payment goodsmall-operator)
build=()
for image in "${images[@]}"; do build+=(-p "$image" --bin "$image"); done
# Built as it was released: without the lint wrapper test.sh may have set (today's
# clippy may find what the clippy of its day did not).
(cd "$dir/src" && env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS CARGO_TARGET_DIR="$cache/target" \
  cargo build --locked "${build[@]}")
epoch="$(git log -1 --format=%ct "$commit")"
(cd "$dir/src" && SOURCE_DATE_EPOCH="$epoch" scripts/images.sh --binaries "$cache/target/debug" --out "$dir/images")
tag="previous-$commit"
for image in "${images[@]}"; do
  python3 scripts/lib/oci_name.py "$dir/images/$image.oci.tar" "docker.io/library/$image:$tag" "$epoch"
done
rm -rf "$dir/images/context"
echo "$tag" >"$dir/tag"
touch "$dir/done"
say "previous release ready in $((SECONDS - started)) s"
echo "$dir"
