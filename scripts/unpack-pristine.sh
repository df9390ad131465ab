#!/usr/bin/env bash
# Unpack pristine QEMU from the cached tarball into a fresh git tree:
# commit "pristine", then the +ds build fixup (scripts/debian-ds-build.patch),
# tagged "base".  What a reviewer has before applying our series; used by
# test-patchset.sh and check-series.sh.
#
# Usage: unpack-pristine.sh REPO_TOP CACHE DIR   (DIR is replaced)
set -euo pipefail
top=$1 cache=$2 q=$3
rm -rf "$q"
mkdir -p "$q"
tar -xJf "$cache/qemu.orig.tar.xz" -C "$q" --strip-components=1
git -C "$q" init -q
# No automatic gc: the 38,000 loose objects of the first commit would
# start one, which repacks the whole tree we are about to throw away.
git -C "$q" config gc.auto 0
git -C "$q" config maintenance.auto false
git -C "$q" add -A -f
gq() { git -C "$q" -c user.name=test -c user.email=test@localhost "$@"; }
gq commit -q -m pristine
gq am -q "$top/scripts/debian-ds-build.patch"
gq tag base
