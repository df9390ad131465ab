#!/usr/bin/env bash
# Unpack pristine QEMU into a git tree, apply patches/ with git am, and
# link our new files into it.
#
# Usage: prepare-tree.sh TARBALL VERSION TREE
#
# The tree's first commit is pristine upstream (tagged "upstream"), then
# a build fixup for Debian's +ds tarball (tagged "base"); our patches
# follow as commits, so "make export-patches" can regenerate
# patches/ from whatever a developer commits there.  When patches/ changes,
# the tree is reset to "upstream" and the series re-applied — but never
# over commits or edits that have not been exported.
set -euo pipefail

die() { echo "prepare-tree: error: $*" >&2; exit 1; }
say() { echo "prepare-tree: $*"; }

tarball=$1 version=$2 tree=$3
top=$(cd "$(dirname "$0")/.." && pwd)
git_q() { git -C "$tree" -c user.name="vfio-user build" -c user.email=build@localhost "$@"; }

if [ ! -d "$tree/.git" ]; then
    say "unpacking QEMU $version into $tree"
    rm -rf "$tree.tmp"
    mkdir -p "$tree.tmp"
    tar -xJf "$tarball" -C "$tree.tmp" --strip-components=1
    git -C "$tree.tmp" init -q -b upstream-base
    git -C "$tree.tmp" config core.autocrlf false
    git -C "$tree.tmp" config gc.auto 0
    git -C "$tree.tmp" add -A -f
    git -C "$tree.tmp" -c user.name="vfio-user build" -c user.email=build@localhost \
        commit -q -m "QEMU $version (pristine Debian orig tarball)"
    git -C "$tree.tmp" tag upstream
    git -C "$tree.tmp" checkout -q -b work
    mv "$tree.tmp" "$tree"
    rm -f "$tree/.applied-head"
fi

# Refuse to throw away a developer's unexported work.
if [ -f "$tree/.applied-head" ]; then
    if [ "$(git -C "$tree" rev-parse HEAD)" != "$(cat "$tree/.applied-head")" ]; then
        die "$tree has commits that are not in patches/: run 'make export-patches' (or 'make reset-tree' to drop them), then rerun"
    fi
fi
if [ -n "$(git -C "$tree" status --porcelain --untracked-files=no)" ]; then
    die "$tree has uncommitted edits to QEMU files: commit them there and run 'make export-patches' (or 'make reset-tree'), then rerun"
fi

git_q checkout -q work
git_q reset -q --hard upstream
# Not part of our series: lets Debian's firmware-less +ds source build.
git_q am -q --committer-date-is-author-date "$top/scripts/debian-ds-build.patch" ||
    die "scripts/debian-ds-build.patch does not apply to QEMU $version"
git_q tag -f base >/dev/null
shopt -s nullglob
patches=("$top"/patches/*.patch)
if [ ${#patches[@]} -gt 0 ]; then
    say "applying ${#patches[@]} patches from patches/"
    if ! git_q am -q --committer-date-is-author-date "${patches[@]}" >/tmp/prepare-tree-am.log 2>&1; then
        failed=$(sed -n "s/^Patch failed at //p" /tmp/prepare-tree-am.log | tail -n1)
        git_q am --abort >/dev/null 2>&1 || true
        git_q reset -q --hard base
        cat /tmp/prepare-tree-am.log >&2
        die "patch '$failed' no longer applies to QEMU $version: rebase it in $tree (git am, fix, git am --continue), then 'make export-patches'"
    fi
fi
git -C "$tree" rev-parse HEAD > "$tree/.applied-head"

# Link our new files into the tree (file by file, so that new files can
# live inside existing QEMU directories such as tests/qtest).
"$top/scripts/overlay.sh" "$top" "$tree"
