#!/usr/bin/env bash
# make check-series: prove that every patch of the client series builds on
# its own, as bisection and review need.  On a fresh unpack of pristine
# QEMU (after the +ds build fixup), with one build directory: git am one
# more patch, ninja qemu-system-x86_64, and the vfio-user qtests that the
# prefix has (those whose source exists and that meson knows); repeat for
# every patch.  ccache makes each step incremental.  Fails, naming the
# patch, at the first prefix that does not apply or does not build.
#
# Not part of make check (it takes tens of minutes on 2 cores).
#
# Usage: check-series.sh REPO_TOP CACHE SERIES_DIR WORKDIR
set -euo pipefail
top=$(cd "$1" && pwd) cache=$2 series=$(cd "$3" && pwd) work=$4
die() { echo "check-series: FAIL: $*" >&2; exit 1; }
say() { echo "check-series: $*"; }

shopt -s nullglob
patches=()
for p in "$series"/*.patch; do
    [ "$(basename "$p")" = 0000-cover-letter.patch ] || patches+=("$p")
done
[ ${#patches[@]} -gt 0 ] || die "no patches in $series: make patchset?"

rm -rf "$work"
q=$work/qemu
"$top/scripts/unpack-pristine.sh" "$top" "$cache" "$q"
gq() { git -C "$q" -c user.name=test -c user.email=test@localhost "$@"; }
mkdir -p "$q/build"
(cd "$q/build" && eval ../configure $CONFIGURE_FLAGS >configure.log 2>&1) ||
    { tail -n 20 "$q/build/configure.log"; die "configure of pristine QEMU failed"; }

# shellcheck source=lib.sh
. "$top/scripts/lib.sh"
mapfile -t qtests < <(our_qtests)
start=$(date +%s)
n=0
for p in "${patches[@]}"; do
    n=$((n + 1))
    name=$(basename "$p")
    t0=$(date +%s)
    gq am -q "$p" || die "$name does not apply on the patches before it"
    log=$work/build-$n.log
    ninja -C "$q/build" qemu-system-x86_64 >"$log" 2>&1 ||
        { tail -n 30 "$log"; die "$name: qemu-system-x86_64 does not build (log: $log)"; }
    built=qemu-system-x86_64
    for t in "${qtests[@]}"; do
        [ -e "$q/tests/qtest/$t.c" ] || continue
        ninja -C "$q/build" -t query "tests/qtest/$t" >/dev/null 2>&1 || continue
        ninja -C "$q/build" "tests/qtest/$t" >>"$log" 2>&1 ||
            { tail -n 30 "$log"; die "$name: tests/qtest/$t does not build (log: $log)"; }
        built+=" $t"
    done
    say "$n/${#patches[@]} $name: built $built ($(( $(date +%s) - t0 )) s)"
done
say "all ${#patches[@]} prefixes of $(basename "$series") build ($(( $(date +%s) - start )) s)"
rm -rf "$work"
