#!/usr/bin/env bash
# Configure a second QEMU build, $2 (default: $1/build-server), of the tree
# $1 with QEMU's own vfio-user server (-machine x-remote,vfio-user=on,
# -object x-vfio-user-server), used as an interop peer. It takes the same
# flags as the main build ($CONFIGURE_FLAGS, exported by the Makefile) plus
# multiprocess and the libvfio-user subproject, which is built from the tree
# (--disable-download).
set -eo pipefail
. "$(dirname "$0")/lib.sh"
tree=${1:?usage: configure-server.sh TREE [BUILDDIR]}
builddir=${2:-$tree/build-server}

echo "configure (server): $CONFIGURE_FLAGS --enable-multiprocess --enable-vfio-user-server"
configure_qemu configure-server "$tree" "$builddir" "$builddir/configure.log" \
    --enable-multiprocess --enable-vfio-user-server
