#!/usr/bin/env bash
# Debian's +ds tarball ships no firmware: point the build tree's data
# directory (where a QEMU run from the build tree looks first) at Debian's
# seabios and ipxe, and at linuxboot_dma.bin from trixie's
# qemu-system-data (cached by fetch-qemu.sh), so -kernel boots work.
#
# Usage: link-firmware.sh CACHE QEMU_BUILD_DIR
set -euo pipefail
cache=$1 qbuild=$2
dest="$qbuild/qemu-bundle/usr/local/share/qemu"
mkdir -p "$dest"
link() { [ -e "$1" ] && ln -sfn "$1" "$dest/$(basename "$1")"; return 0; }
for f in /usr/share/seabios/*.bin; do link "$f"; done
for f in /usr/lib/ipxe/qemu/*.rom; do link "$f"; done
for f in "$cache"/firmware/*.bin; do link "$f"; done
[ -e "$dest/bios-256k.bin" ] || {
    echo "link-firmware: error: no bios-256k.bin in /usr/share/seabios: run scripts/install-deps.sh" >&2
    exit 1
}
