#!/usr/bin/env bash
# libvfio-user exactly as QEMU 10.0's tarball ships it, without our
# series (patches/0010 and patches/0015 change the library), with its
# samples and our dma-device: the second set of interop peers, so that
# make check shows which interop cases work with an unpatched library.
# The source is subprojects/libvfio-user at tag "upstream" of the build
# tree (the pristine tarball's first commit), exported once per tree id.
#
# Results, in OUTDIR/build/samples (as scripts/build-libvfio-user.sh).
#
# Usage: build-libvfio-user-pristine.sh QEMU_TREE OUTDIR
set -euo pipefail

die() { echo "build-libvfio-user-pristine: error: $*" >&2; exit 1; }

[ $# = 2 ] || die "usage: build-libvfio-user-pristine.sh QEMU_TREE OUTDIR"
tree=$1 out=$2
id=$(git -C "$tree" rev-parse --verify -q upstream:subprojects/libvfio-user) ||
    die "$tree has no tag upstream with subprojects/libvfio-user (make tree)"
mkdir -p "$out"
src=$out/src
# Export again only when the pristine tree changed, so that ninja in the
# build directory sees unchanged sources and rebuilds nothing.
if [ "$(cat "$out/src.id" 2>/dev/null)" != "$id" ]; then
    rm -rf "$src" "$out/src.id"
    mkdir -p "$src"
    git -C "$tree" archive "$id" | tar -x -C "$src"
    echo "$id" > "$out/src.id"
fi
exec "$(dirname "$0")/build-libvfio-user.sh" "$src" "$out/build"
