#!/usr/bin/env bash
# Install what building and testing the vfio-user client needs, from
# Debian's archive, on a Debian 12 (bookworm) machine.  Idempotent: it
# only adds what is missing, and says what and why.
#
# - bookworm-backports: meson >= 1.5 and python3-pycotap (bookworm's meson
#   1.0.1 is too old for QEMU 10.0; the +ds tarball dropped the bundled
#   wheels).
# - trixie, source only (deb-src) plus binary lists pinned to priority 1:
#   the QEMU 10.0 source package, and qemu-system-data for
#   linuxboot_dma.bin.  The pin means nothing is ever upgraded from trixie;
#   we only fetch single files from it explicitly.
set -euo pipefail

say() { echo "install-deps: $*"; }
die() { echo "install-deps: error: $*" >&2; exit 1; }

command -v apt-get >/dev/null || die "apt-get not found: this build needs Debian 12 (bookworm)"

SOURCES=/etc/apt/sources.list.d/vfio-user-client.sources
PIN=/etc/apt/preferences.d/vfio-user-client-trixie
STAMP=/var/lib/apt/vfio-user-client.updated

want_sources='# Added by the vfio-user client build (scripts/install-deps.sh).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'

want_pin='# Added by the vfio-user client build: never install or upgrade from
# trixie unless a package is asked for explicitly.
Package: *
Pin: release n=trixie
Pin-Priority: 1'

# package:why
PKGS=(
    "build-essential:compiler and make"
    "pkgconf:meson finds libraries"
    "python3-venv:QEMU configure builds a venv"
    "xz-utils:unpack the QEMU tarball"
    "git:build tree is a git repo, patches applied with git am"
    "libglib2.0-dev:QEMU core"
    "libpixman-1-dev:QEMU display"
    "libslirp-dev:user networking"
    "ninja-build:meson backend"
    "seabios:guest BIOS"
    "ipxe-qemu:option ROMs"
    "ccache:fast rebuilds"
    "libjson-c-dev:libvfio-user (interop servers)"
    "libcmocka-dev:libvfio-user (interop servers)"
    "flex:QEMU build"
    "bison:QEMU build"
    "libfdt-dev:QEMU build (device trees)"
    "gnuplot-nox:make bench plots throughput against transfer size"
    "cpio:guest initramfs (make demo, guest tests)"
    "clang-14:make fuzz (libFuzzer harness, with ASan/UBSan)"
    "libclang-rt-14-dev:make fuzz (libFuzzer and sanitizer runtimes)"
    "llvm-14:make fuzz (llvm-symbolizer: crash stacks, fuzz/ubsan.supp)"
)
BPO_PKGS=(
    "meson:QEMU 10.0 needs meson >= 1.5"
    "python3-pycotap:QEMU's test runner"
)

missing() {
    local p
    for p in "$@"; do
        p=${p%%:*}
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
    done
}
meson_ok() {
    local v
    v=$(dpkg-query -W -f='${Version}' meson 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge 1.5
}

# Fast path, no root needed: everything is already here.
if [ -z "$(missing "${PKGS[@]}" "${BPO_PKGS[@]}")" ] && meson_ok && \
   [ "$(cat "$SOURCES" 2>/dev/null)" = "$want_sources" ] && \
   [ "$(cat "$PIN" 2>/dev/null)" = "$want_pin" ]; then
    exit 0
fi
[ "$(id -u)" = 0 ] || die "build dependencies are missing and installing them needs root: run 'sudo make' or become root"

changed=0
if [ "$(cat "$SOURCES" 2>/dev/null)" != "$want_sources" ]; then
    say "adding $SOURCES (bookworm-backports for meson/pycotap, trixie for the QEMU 10.0 source)"
    printf '%s\n' "$want_sources" > "$SOURCES"
    changed=1
fi
if [ "$(cat "$PIN" 2>/dev/null)" != "$want_pin" ]; then
    say "adding $PIN (trixie pinned to priority 1: nothing is upgraded from it)"
    printf '%s\n' "$want_pin" > "$PIN"
    changed=1
fi

if [ "$changed" = 1 ] || [ ! -e "$STAMP" ] || \
   [ -n "$(find "$STAMP" -mmin +1440 2>/dev/null)" ]; then
    say "apt-get update"
    if ! apt-get update -q >/tmp/vfio-user-apt-update.log 2>&1 || \
       grep -qE '^(W|E): Failed to fetch' /tmp/vfio-user-apt-update.log; then
        cat /tmp/vfio-user-apt-update.log >&2
        die "cannot reach Debian's archive (apt-get update failed, log above): check the network or apt proxy, then rerun"
    fi
    touch "$STAMP"
fi

explain() {
    local want=" $1 " e
    shift
    for e in "$@"; do
        case "$want" in *" ${e%%:*} "*) say "  ${e%%:*}: ${e#*:}";; esac
    done
}

m=$(missing "${PKGS[@]}" | tr '\n' ' ')
if [ -n "${m// }" ]; then
    say "installing from bookworm:"
    explain "$m" "${PKGS[@]}"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $m \
        || die "apt-get install failed for: $m"
fi

m=$(missing "${BPO_PKGS[@]}" | tr '\n' ' ')
meson_ok || m="$m meson"
if [ -n "${m// }" ]; then
    say "installing from bookworm-backports:"
    explain "$m" "${BPO_PKGS[@]}"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -t bookworm-backports $m || die "apt-get install failed for: $m"
fi
say "all build dependencies present"
