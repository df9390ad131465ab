#!/usr/bin/env bash
# Build libvfio-user from QEMU's tarball (subprojects/libvfio-user) with its
# samples, and our own libvfio-user DMA device (tests/vfio-user-dma-device),
# for the interop qtests: servers none of us wrote, speaking to our client.
#
# Only the library and the samples are built: the library has no option to
# turn its unit tests off, so we ask ninja for the targets we need.  On a
# rerun nothing is configured again and ninja finds nothing to do.
#
# Results, in OUTDIR/samples: gpio-pci-idio-16, server, null, dma-device
# (the directory the qtests take in VFIO_USER_SAMPLES).
#
# Usage: build-libvfio-user.sh TREE OUTDIR
#   TREE    libvfio-user source (QEMU's subprojects/libvfio-user)
#   OUTDIR  build directory (created; owned by this script)
set -euo pipefail

die() { echo "build-libvfio-user: error: $*" >&2; exit 1; }

[ $# = 2 ] || die "usage: build-libvfio-user.sh TREE OUTDIR"
tree=$(realpath -e "$1" 2>/dev/null) || die "no libvfio-user source at $1"
[ -f "$tree/meson.build" ] && [ -f "$tree/include/libvfio-user.h" ] ||
    die "$tree is not a libvfio-user source tree"
mkdir -p "$2" || die "cannot create $2"
out=$(realpath -e "$2")
top=$(cd "$(dirname "$0")/.." && pwd)
dma_src=$top/tests/vfio-user-dma-device/dma-device.c
[ -f "$dma_src" ] || die "missing $dma_src"
for t in meson ninja pkg-config; do
    command -v "$t" >/dev/null || die "$t not found: run scripts/install-deps.sh"
done
for p in json-c cmocka; do
    pkg-config --exists "$p" ||
        die "$p not found by pkg-config: run scripts/install-deps.sh (libjson-c-dev libcmocka-dev)"
done

# Configure once; again only if the source tree moved or setup never
# finished.  A build directory we did not make is never wiped.
stamp=$out/.libvfio-user-source
if [ ! -f "$out/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$tree" ]; then
    if [ -n "$(ls -A "$out")" ]; then
        [ -d "$out/meson-private" ] || [ -f "$stamp" ] ||
            die "$out is not empty and not a libvfio-user build directory"
        find "$out" -mindepth 1 -delete
    fi
    meson setup --buildtype=debugoptimized -Ddebug-logs=disabled \
        "$out" "$tree" >"$out/setup.log" 2>&1 ||
        die "meson setup failed, see $out/setup.log"
    echo "$tree" > "$stamp"
fi

# "server" and "gpio-pci-idio-16" are what the tests use; null is cheap.
ninja -C "$out" samples/gpio-pci-idio-16 samples/server samples/null \
    >"$out/build.log" 2>&1 ||
    die "building libvfio-user failed, see $out/build.log"

# Our device links the library just built; rebuild when either changed.
# Whether the library DMAs by message at the offset asked for (our patch
# 0010, vfu_dma_transfer() adding sg->offset) decides what the device
# accepts: the tarball's library as shipped does not.
lib=$out/lib/libvfio-user.so
dma_bin=$out/samples/dma-device
sgl_offset=0
grep -q 'sg->dma_addr + sg->offset + count' "$tree/lib/libvfio-user.c" &&
    sgl_offset=1
# And whether vfu_sgl_read() takes many entries (the series' burst of
# DMA_READs, the socket transport's send_msgs).
sgl_many=0
grep -q 'send_msgs' "$tree/lib/tran.h" && sgl_many=1
if [ ! -x "$dma_bin" ] || [ "$dma_src" -nt "$dma_bin" ] ||
        [ "$lib" -nt "$dma_bin" ] ||
        [ "$(cat "$dma_bin.sgl-offset" 2>/dev/null)" != "$sgl_offset $sgl_many" ]; then
    ${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter \
        -DDMA_DEV_SGL_OFFSET=$sgl_offset -DDMA_DEV_SGL_MANY=$sgl_many \
        -I"$tree/include" -o "$dma_bin.tmp" "$dma_src" \
        -L"$out/lib" -lvfio-user -Wl,-rpath,"$out/lib" \
        >"$out/dma-device.log" 2>&1 ||
        die "building dma-device failed, see $out/dma-device.log"
    mv -f "$dma_bin.tmp" "$dma_bin"
    echo "$sgl_offset $sgl_many" > "$dma_bin.sgl-offset"
fi
