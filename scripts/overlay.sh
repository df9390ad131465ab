#!/usr/bin/env bash
# Symlink every file of our overlay directories into the QEMU tree, so that
# editing them triggers an incremental rebuild.  Files that already exist in
# the tree (as real files) are an error: changes to QEMU files belong in
# patches/.  Links whose target has gone are removed.
#
# Usage: overlay.sh REPO_TOP TREE
set -euo pipefail
top=$1 tree=$2
dirs=(hw include docs tests)

exclude="$tree/.git/info/exclude"
: > "$exclude.new"
for d in "${dirs[@]}"; do
    [ -d "$top/$d" ] || continue
    while IFS= read -r -d '' f; do
        rel=${f#"$top"/}
        dst="$tree/$rel"
        if [ -e "$dst" ] && [ ! -L "$dst" ]; then
            echo "overlay: error: $rel exists in QEMU itself: edit it through patches/, not the overlay" >&2
            exit 1
        fi
        mkdir -p "$(dirname "$dst")"
        if [ "$(readlink "$dst" 2>/dev/null)" != "$f" ]; then
            ln -sfn "$f" "$dst"
        fi
        echo "/$rel" >> "$exclude.new"
    done < <(find "$top/$d" -type f -print0)
done
# Drop links to files we no longer have.
find "$tree" -path "$tree/build" -prune -o -type l -lname "$top/*" -print | while read -r l; do
    [ -e "$l" ] || rm -f "$l"
done
echo "/.applied-head" >> "$exclude.new"
echo "/.prepared" >> "$exclude.new"
echo "/build-server/" >> "$exclude.new"
echo "/build-asan/" >> "$exclude.new"
echo "/build/" >> "$exclude.new"
mv "$exclude.new" "$exclude"
