#!/usr/bin/env bash
# Prove that the emitted series are what we ship: each applies with git am
# to a fresh unpack of the pristine tarball (after the +ds build fixup) on
# its own, as its audience will apply it; all three, applied one after the
# other (client, server, models: the order of the directories; they touch
# disjoint files, so any order gives the same tree), give file-for-file the
# tree we built and tested; and that tree builds.
#
# Usage: test-patchset.sh REPO_TOP CACHE PATCHSET_DIR WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
top=$1 cache=$2 out=$(cd "$3" && pwd) work=$4
die() { echo "test-patchset: error: $*" >&2; exit 1; }

rm -rf "$work"
q=$work/qemu
"$top/scripts/unpack-pristine.sh" "$top" "$cache" "$q"
gq() { git -C "$q" -c user.name=test -c user.email=test@localhost "$@"; }

shopt -s nullglob
series=("$out"/*/)
[ ${#series[@]} -eq 3 ] || die "expected three series in $out, found ${#series[@]}: make patchset?"
# The patches of series directory $1, cover letter left out.
patches_of() {
    local p
    for p in "$1"/*.patch; do
        [ "$(basename "$p")" = 0000-cover-letter.patch ] || echo "$p"
    done
}
# Each on its own, on pristine QEMU.
for s in "${series[@]}"; do
    name=$(basename "$s")
    mapfile -t patches < <(patches_of "$s")
    [ ${#patches[@]} -gt 0 ] || die "no patches in $s"
    gq checkout -q -b "only-$name" base
    gq am -q "${patches[@]}" || die "series $name does not apply to pristine QEMU on its own"
    echo "test-patchset: $name: ${#patches[@]} patches apply to pristine QEMU on their own"
done
# All of them, one after the other.
gq checkout -q -b all base
for s in "${series[@]}"; do
    mapfile -t patches < <(patches_of "$s")
    gq am -q "${patches[@]}" ||
        die "series $(basename "$s") does not apply after the ones before it"
done
echo "test-patchset: all three applied in order:" $(basename -a "${series[@]}")

# Same content as the build tree (symlinks there are our files here).
diff -r -q --exclude=.git --exclude=build --exclude=.applied-head \
    --exclude=.prepared --exclude=GNUmakefile --exclude=build-server \
    --exclude=build-asan "$q" "$top/build/qemu" ||
    die "the series do not reproduce build/qemu: make export-patches?"
echo "test-patchset: tree identical to build/qemu"

configure_qemu test-patchset "$q" "$q/build" "$q/build/configure.log" ||
    exit 1
ninja -C "$q/build" qemu-system-x86_64 >"$work/ninja.log" 2>&1 ||
    { tail -n 30 "$work/ninja.log"; die "build failed"; }
echo "test-patchset: built $q/build/qemu-system-x86_64"
rm -rf "$work"
