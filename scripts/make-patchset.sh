#!/usr/bin/env bash
# Emit our work as three series against pristine QEMU 10.0, one per
# audience, as git format-patch output with a cover letter each:
#
#   OUTDIR/1-client  the vfio-user client: hw/vfio, hw/vfio-user, qapi,
#                    tests, docs (scripts/patchset/cover-client.txt)
#   OUTDIR/2-server  fixes to QEMU's vfio-user server and its copy of
#                    libvfio-user, and the memory API change it uses
#                    (scripts/patchset/cover-server.txt)
#   OUTDIR/3-models  fixes to QEMU's device models that our tests found:
#                    hw/nvme, hw/acpi (scripts/patchset/cover-models.txt)
#
# Each series applies to pristine QEMU on its own: they touch disjoint
# files, so they also apply one after the other, in any order.
#
# Which series a patch from patches/ belongs to goes by its subject:
# "vfio-user-server:" and "memory:" are the server's, "hw/nvme:" and
# "hw/acpi" the device models', any other the client's.
#
# The client series: first its patches/ edits that the new files build on
# (subjects "vfio:", "vfio/", "qapi:", "qapi/"), each as its own commit;
# then our new files, grouped into commits by scripts/patchset/NN-name.msg;
# then any other client patch from patches/.  A .msg file is a commit message
# (subject, blank line, body) followed by lines
#     Files: GLOB...     new files of the group, relative to the top;
#                        each new file belongs to exactly one group
#     Squash: SUBJECT    a patch from patches/ (subject glob, without
#                        "[PATCH]") folded into the group's commit, its
#                        commit message body appended: the build wiring
#                        of the group's files
# Every commit builds: hw/vfio-user's build files (meson.build, Kconfig,
# trace-events, trace.h) belong to no group; they come with the first
# group that adds a C file of hw/vfio-user, and grow with each group: a
# meson.build line naming a C file, and a trace-events section headed
# "# file.c", appear with that file.
#
# Usage: make-patchset.sh REPO_TOP TREE OUTDIR
set -euo pipefail
top=$1 tree=$2 out=$3
die() { echo "make-patchset: error: $*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q --no-checkout -c gc.auto=0 "$tree" "$work/q"
q=$work/q
# One identity for the whole series: the author of our patches/ (so that
# the group commits and cover letters are not signed by whoever ran this).
shopt -s nullglob
first=("$top"/patches/*.patch)
ident=$( { [ ${#first[@]} -gt 0 ] && sed -n 's/^From: //p' "${first[0]}" | head -n1; } || true)
name=${ident% <*} email=${ident##*<} email=${email%>}
if [ -z "$ident" ] || [ "$name" = "$ident" ]; then
    name=$(git -C "$tree" config user.name) email=$(git -C "$tree" config user.email)
fi
gq() { git -C "$q" -c gc.auto=0 -c user.name="$name" -c user.email="$email" "$@"; }

# The subject of a patch file, continuation lines joined, "[PATCH...]" off.
subject() {
    awk '/^Subject:/ { s = $0; getline;
                       while ($0 ~ /^[ \t]/) { s = s $0; getline }
                       print s; exit }' "$1" |
        sed 's/^Subject: *//; s/^\[PATCH[^]]*\] *//; s/[ \t]\{1,\}/ /g'
}
# The commit message body of a patch file, without trailers.
body() {
    awk 'BEGIN { h = 1 } h && /^$/ { h = 0; next }
         !h && /^---$/ { exit } !h { print }' "$1" |
        sed '/^Signed-off-by:/d' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}

shopt -s nullglob
declare -A subj=()
client=() server=() models=()
for p in "$top"/patches/*.patch; do
    subj[$p]=$(subject "$p")
    case "${subj[$p]}" in
        vfio-user-server:*|memory:*) server+=("$p");;
        hw/nvme:*|hw/acpi:*|hw/acpi/*) models+=("$p");;
        *) client+=("$p");;
    esac
done

# Which client patches a group folds in.
declare -A squashed=()
for msg in "$top"/scripts/patchset/*.msg; do
    while read -r g; do
        n=0
        for p in "${client[@]}"; do
            # shellcheck disable=SC2053
            if [[ ${subj[$p]} == $g ]]; then
                [ -z "${squashed[$p]:-}" ] || die "$(basename "$p") is squashed into two groups"
                squashed[$p]=$msg
                n=$((n + 1))
            fi
        done
        [ $n -gt 0 ] || die "$(basename "$msg"): no client patch in patches/ has the subject '$g'"
    done < <(sed -n 's/^Squash: *//p' "$msg")
done
before=() after=()
for p in "${client[@]}"; do
    [ -z "${squashed[$p]:-}" ] || continue
    case "${subj[$p]}" in
        vfio:*|vfio/*|qapi:*|qapi/*) before+=("$p");;
        *) after+=("$p");;
    esac
done

# hw/vfio-user's build files, as they are once every file is in.
vu=hw/vfio-user
buildfiles=("$vu/meson.build" "$vu/Kconfig" "$vu/trace-events" "$vu/trace.h")
# Write the build files for the C files of hw/vfio-user now in the tree.
grow_build_files() {
    local f
    compgen -G "$q/$vu/*.c" >/dev/null || return 0
    for f in "${buildfiles[@]}"; do
        [ -e "$top/$f" ] || continue
        case "$f" in
        */meson.build)
            # Drop the lines that name a C file not in yet.
            while IFS= read -r line; do
                if [[ $line =~ \'([^\']+\.c)\' ]] &&
                        [ ! -e "$q/$vu/${BASH_REMATCH[1]}" ]; then
                    continue
                fi
                printf '%s\n' "$line"
            done < "$top/$f" > "$q/$f";;
        */trace-events)
            # Keep the sections ("# file.c" to the next header) of files in.
            awk -v dir="$q/$vu" '
                /^# [^ ]+\.c$/ { keep = system("test -e " dir "/" $2) == 0 }
                keep || !seen { print }
                /^# [^ ]+\.c$/ { seen = 1 }' "$top/$f" |
                sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$q/$f";;
        *)
            cp "$top/$f" "$q/$f";;
        esac
        gq add -- "$f"
    done
}

# --- the client series -----------------------------------------------------
git -C "$q" checkout -q -b client base
if [ ${#before[@]} -gt 0 ]; then
    gq am -q "${before[@]}" || die "client patches from patches/ do not apply in order"
fi

mapfile -t newfiles < <(cd "$top" && find hw include docs tests -type f 2>/dev/null | sort)
declare -A claimed=()
for f in "${buildfiles[@]}"; do claimed[$f]=build; done
for msg in "$top"/scripts/patchset/*.msg; do
    files=()
    while read -r g; do
        for f in "${newfiles[@]}"; do
            # shellcheck disable=SC2053
            if [[ $f == $g ]]; then
                [ -z "${claimed[$f]:-}" ] || die "$f is in two groups (or is a build file, which belongs to none)"
                claimed[$f]=$msg
                files+=("$f")
            fi
        done
    done < <(sed -n 's/^Files: *//p' "$msg" | tr ' ' '\n' | sed '/^$/d')
    [ ${#files[@]} -gt 0 ] || die "$(basename "$msg") names no file we have"
    for f in "${files[@]}"; do
        mkdir -p "$q/$(dirname "$f")"
        cp "$top/$f" "$q/$f"
    done
    gq add -- "${files[@]}"
    grow_build_files
    sed '/^Files:/d; /^Squash:/d' "$msg" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$work/msg"
    for p in "${client[@]}"; do
        [ "${squashed[$p]:-}" = "$msg" ] || continue
        gq apply --index "$p" || die "$(basename "$p") does not apply in $(basename "$msg")"
        b=$(body "$p")
        [ -z "$b" ] || printf '\n%s\n' "$b" >> "$work/msg"
    done
    gq commit -q -s -F "$work/msg"
done
for f in "${newfiles[@]}"; do
    [ -n "${claimed[$f]:-}" ] || die "$f belongs to no group in scripts/patchset/*.msg"
done
for f in "${buildfiles[@]}"; do
    [ ! -e "$top/$f" ] || cmp -s "$top/$f" "$q/$f" ||
        die "$f: the last group does not give it whole: a line or section names a file of no group?"
done
if [ ${#after[@]} -gt 0 ]; then
    gq am -q "${after[@]}" || die "client patches from patches/ do not apply after the new files"
fi

# --- the server and device model series ----------------------------------------------
git -C "$q" checkout -q -b server base
[ ${#server[@]} -eq 0 ] || gq am -q "${server[@]}" ||
    die "vfio-user-server patches do not apply to pristine QEMU on their own"
git -C "$q" checkout -q -b models base
[ ${#models[@]} -eq 0 ] || gq am -q "${models[@]}" ||
    die "hw/nvme and hw/acpi patches do not apply to pristine QEMU on their own"

# --- format-patch, cover letters filled in -------------------------------------
rm -rf "$out"
mkdir -p "$out"
emit() {
    local name=$1 dir=$2 cover=$top/scripts/patchset/cover-$1.txt n
    n=$(git -C "$q" rev-list --count "base..$name")
    [ "$n" -gt 0 ] || return 0
    [ -f "$cover" ] || die "no cover letter for the $name series: $cover"
    gq format-patch -q --no-signature --zero-commit --cover-letter \
        --thread=shallow -o "$out/$dir" "base..$name"
    # Subject: the cover's first line; blurb: the rest.
    awk -v cover="$cover" '
        BEGIN { getline title < cover; getline blank < cover
                while ((getline l < cover) > 0) blurb = blurb l "\n" }
        /\*\*\* SUBJECT HERE \*\*\*/ { sub(/\*\*\* SUBJECT HERE \*\*\*/, title) }
        /^\*\*\* BLURB HERE \*\*\*$/ { printf "%s", blurb; next }
        { print }' "$out/$dir/0000-cover-letter.patch" > "$work/cover"
    mv "$work/cover" "$out/$dir/0000-cover-letter.patch"
    echo "make-patchset: $name: $n patch(es) and a cover letter in $out/$dir"
}
emit client 1-client
emit server 2-server
emit models 3-models
echo "make-patchset: each applies with git am to pristine QEMU 10.0; together in any order"
