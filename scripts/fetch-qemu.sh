#!/usr/bin/env bash
# Fetch the pristine QEMU 10.0.x source (the orig tarball of Debian's
# trixie "qemu" source package, verified by apt against the signed archive)
# and the option ROMs QEMU builds itself, linuxboot_dma.bin among them
# (from trixie's qemu-system-data), into a cache that
# "make clean" leaves alone, so a rebuild never downloads again.
#
# Usage: fetch-qemu.sh CACHE_DIR
# Prints nothing on a cache hit; writes CACHE_DIR/qemu-version,
# CACHE_DIR/qemu.orig.tar.xz and CACHE_DIR/firmware/linuxboot_dma.bin.
set -euo pipefail

die() { echo "fetch-qemu: error: $*" >&2; exit 1; }
say() { echo "fetch-qemu: $*"; }

cache=${1:?usage: fetch-qemu.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

check_version() {
    case "$1" in
        10.0.*) ;;
        *) die "Debian's trixie qemu source is $1, not 10.0.x: this patch series targets QEMU 10.0 only; port patches/ to $1 or pin an older snapshot";;
    esac
}

if [ -s "$cache/qemu.orig.tar.xz" ] && [ -s "$cache/qemu-version" ] && \
   [ -s "$cache/firmware/linuxboot_dma.bin" ] && \
   [ -s "$cache/firmware/kvmvapic.bin" ]; then
    check_version "$(cat "$cache/qemu-version")"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "the QEMU source is not cached yet and fetching it needs root (apt): run 'sudo make' or become root"

# Only trixie has deb-src entries (install-deps.sh), so every source
# version apt knows is trixie's; take the highest.
full=$(apt-cache showsrc qemu 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)
[ -n "$full" ] || die "apt knows no trixie source for qemu: run scripts/install-deps.sh (it adds the deb-src entry), check the network, rerun"
upstream=${full#*:}
upstream=${upstream%%-*}
upstream=${upstream%%+*}
check_version "$upstream"

tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# apt-get drops privileges to _apt for downloads; let it write here.
chown _apt "$tmp" 2>/dev/null || true
say "downloading qemu $full source (apt verifies it against trixie's signed Sources)"
apt-get source -q --download-only "qemu=$full" >apt.log 2>&1 || {
    cat apt.log >&2
    die "apt-get source qemu=$full failed (log above): check the network and rerun"
}
orig=$(ls qemu_*.orig.tar.xz 2>/dev/null | head -n1)
[ -n "$orig" ] || die "apt-get source fetched no orig tarball"

say "downloading qemu-system-data $full for linuxboot_dma.bin"
apt-get download -q "qemu-system-data=$full" >>apt.log 2>&1 || {
    cat apt.log >&2
    die "apt-get download qemu-system-data=$full failed (log above)"
}
dpkg-deb -x qemu-system-data_*.deb data
mkdir -p "$cache/firmware"
# The option ROMs QEMU builds itself (linuxboot_dma.bin for -kernel,
# kvmvapic.bin, ...); the symlinks there point at seabios/ipxe, which
# link-firmware.sh takes from their own packages.
find data/usr/share/qemu -maxdepth 1 -type f -name '*.bin' \
    -exec cp {} "$cache/firmware/" \;

mv "$orig" "$cache/qemu.orig.tar.xz"
echo "$upstream" > "$cache/qemu-version"
echo "$full" > "$cache/qemu-debian-version"
say "cached QEMU $upstream ($full) in $cache"
