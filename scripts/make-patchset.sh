#!/usr/bin/env bash
# Emit the whole series against pristine QEMU 10.0 as git format-patch
# output: our edits to QEMU files (patches/), then our new files grouped
# into reviewable commits (scripts/patchset/*.msg), then the patches that
# wire the new files into the build, docs and tests.
#
# Order rule: a patch from patches/ whose subject starts with "vfio:",
# "vfio/" or "qapi/" edits what the new files build on and goes first;
# any other subject ("vfio-user:", "tests/qtest:", "docs:") needs the new
# files and goes after them.
#
# Each scripts/patchset/NN-name.msg is a commit message (subject, blank
# line, body) followed by "Files:" lines listing globs relative to the
# repository top.  Every new file must belong to exactly one group.
#
# Usage: make-patchset.sh REPO_TOP TREE OUTDIR
set -euo pipefail
top=$1 tree=$2 out=$3
die() { echo "make-patchset: error: $*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q --no-checkout "$tree" "$work/q"
git -C "$work/q" checkout -q -b series base
gq() { git -C "$work/q" -c user.name="$(git -C "$tree" config user.name)" \
        -c user.email="$(git -C "$tree" config user.email)" "$@"; }

shopt -s nullglob
before=() after=()
for p in "$top"/patches/*.patch; do
    subj=$(sed -n 's/^Subject: \(\[PATCH[^]]*\] \)\{0,1\}//p' "$p" | head -n1)
    case "$subj" in
        vfio:*|vfio/*|qapi/*) before+=("$p");;
        *) after+=("$p");;
    esac
done

if [ ${#before[@]} -gt 0 ]; then
    gq am -q "${before[@]}" || die "patches/ do not apply in order"
fi

# Our new files, listed relative to the top, in overlay directories.
mapfile -t newfiles < <(cd "$top" && find hw include docs tests -type f 2>/dev/null | sort)
declare -A claimed=()
for msg in "$top"/scripts/patchset/*.msg; do
    files=()
    while read -r g; do
        for f in "${newfiles[@]}"; do
            # shellcheck disable=SC2053
            if [[ $f == $g ]]; then
                [ -z "${claimed[$f]:-}" ] || die "$f is in two groups"
                claimed[$f]=$msg
                files+=("$f")
            fi
        done
    done < <(sed -n 's/^Files: *//p' "$msg" | tr ' ' '\n' | sed '/^$/d')
    [ ${#files[@]} -gt 0 ] || continue
    for f in "${files[@]}"; do
        mkdir -p "$work/q/$(dirname "$f")"
        cp "$top/$f" "$work/q/$f"
    done
    gq add -- "${files[@]}"
    sed '/^Files:/d' "$msg" > "$work/msg"
    gq commit -q -s -F "$work/msg"
done
for f in "${newfiles[@]}"; do
    [ -n "${claimed[$f]:-}" ] || die "$f belongs to no group in scripts/patchset/*.msg"
done

if [ ${#after[@]} -gt 0 ]; then
    gq am -q "${after[@]}" || die "patches/ do not apply after the new files"
fi

rm -rf "$out"
mkdir -p "$out"
git -C "$work/q" format-patch -q --no-signature --zero-commit \
    -o "$out" base..series
n=$(ls "$out"/0*.patch | grep -vc 0000-cover-letter || true)
echo "make-patchset: $n patches in $out (apply with git am on pristine QEMU 10.0)"
