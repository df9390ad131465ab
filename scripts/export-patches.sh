#!/usr/bin/env bash
# Regenerate patches/ from the commits made in the build tree on top of
# the "base" tag (pristine QEMU plus the +ds build fixup).
#
# Usage: export-patches.sh REPO_TOP TREE
set -euo pipefail
top=$1 tree=$2
[ -d "$tree/.git" ] || { echo "export-patches: error: no build tree at $tree: run make first" >&2; exit 1; }
if [ -n "$(git -C "$tree" status --porcelain --untracked-files=no)" ]; then
    echo "export-patches: error: $tree has uncommitted edits: commit them there first" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$tree" format-patch -q -N --no-signature --zero-commit \
    -o "$tmp" base..HEAD
rm -f "$top"/patches/*.patch
mkdir -p "$top/patches"
shopt -s nullglob
for p in "$tmp"/*.patch; do
    cp "$p" "$top/patches/"
done
git -C "$tree" rev-parse HEAD > "$tree/.applied-head"
touch "$tree/.prepared"
echo "export-patches: wrote $(ls "$top"/patches/*.patch 2>/dev/null | wc -l) patches to patches/"
