#!/usr/bin/env bash
# Prove that the emitted series is what we ship: it applies with git am to
# a fresh unpack of the pristine tarball (after the +ds build fixup), the
# result is file-for-file the tree we built and tested, and it builds.
#
# Usage: test-patchset.sh REPO_TOP CACHE PATCHSET_DIR WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
top=$1 cache=$2 series=$3 work=$4
die() { echo "test-patchset: error: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work/qemu"
q=$work/qemu
tar -xJf "$cache/qemu.orig.tar.xz" -C "$q" --strip-components=1
git -C "$q" init -q
git -C "$q" add -A -f
gq() { git -C "$q" -c user.name=test -c user.email=test@localhost "$@"; }
gq commit -q -m pristine
gq am -q "$top/scripts/debian-ds-build.patch"
shopt -s nullglob
patches=("$series"/*.patch)
[ ${#patches[@]} -gt 0 ] || die "no patches in $series"
gq am -q "${patches[@]}" || die "the series does not apply to pristine QEMU"
echo "test-patchset: ${#patches[@]} patches applied"

# Same content as the build tree (symlinks there are our files here).
diff -r -q --exclude=.git --exclude=build --exclude=.applied-head \
    --exclude=.prepared --exclude=GNUmakefile --exclude=build-server \
    --exclude=build-asan "$q" "$top/build/qemu" ||
    die "the series does not reproduce build/qemu: make export-patches?"
echo "test-patchset: tree identical to build/qemu"

configure_qemu test-patchset "$q" "$q/build" "$q/build/configure.log" ||
    exit 1
ninja -C "$q/build" qemu-system-x86_64 >"$work/ninja.log" 2>&1 ||
    { tail -n 30 "$work/ninja.log"; die "build failed"; }
echo "test-patchset: built $q/build/qemu-system-x86_64"
rm -rf "$work"
