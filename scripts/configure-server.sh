#!/bin/sh
# Configure a second QEMU build, $2 (default: $1/build-server), of the tree
# $1 with QEMU's own vfio-user server (-machine x-remote,vfio-user=on,
# -object x-vfio-user-server), used as an interop peer. It takes the same
# flags as the main build ($CONFIGURE_FLAGS, exported by the Makefile) plus
# multiprocess and the libvfio-user subproject, which is built from the tree
# (--disable-download).
set -e
tree=${1:?usage: configure-server.sh TREE [BUILDDIR]}
builddir=${2:-$tree/build-server}
: "${CONFIGURE_FLAGS:?CONFIGURE_FLAGS not set (run through make server)}"

mkdir -p "$builddir"
cd "$builddir"
echo "configure (server): $CONFIGURE_FLAGS --enable-multiprocess --enable-vfio-user-server"
if ! eval "'$tree/configure' $CONFIGURE_FLAGS \
		--enable-multiprocess --enable-vfio-user-server" \
		>configure.log 2>&1; then
	tail -n 30 configure.log
	echo "configure failed: see $builddir/configure.log"
	exit 1
fi
