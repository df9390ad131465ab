# shellcheck shell=bash
# Sourced by scripts/*.sh for what they would otherwise each repeat:
#
#   VFIO_USER_CACHE     where downloads are kept ("make clean" keeps it):
#                       $CACHE, else ~/.cache/vfio-user-client, as in the
#                       Makefile
#   configure_qemu      configure a QEMU build dir, quietly, into a log
#   our_qtests          the qtest binaries we own (scripts/qtests.txt)
#
# Usage: . "$(dirname "$0")/lib.sh"

VFIO_USER_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # for the scripts that source this
VFIO_USER_CACHE=${CACHE:-$HOME/.cache/vfio-user-client}

# configure_qemu WHO SRC BUILDDIR LOG [OPTION...]
# Configure the QEMU source SRC in BUILDDIR with $CONFIGURE_FLAGS (the
# Makefile exports them) and OPTIONs, writing the output to LOG.  On
# failure, show the end of LOG, say so as WHO, and return 1.
configure_qemu() {
    local who=$1 src=$2 builddir=$3 log=$4
    shift 4
    : "${CONFIGURE_FLAGS:?CONFIGURE_FLAGS not set (run through make)}"
    mkdir -p "$builddir"
    if ! (cd "$builddir" && eval "'$src/configure' $CONFIGURE_FLAGS $*") \
            >"$log" 2>&1; then
        tail -n 30 "$log"
        echo "$who: configure failed: see $log" >&2
        return 1
    fi
}

# our_qtests: scripts/qtests.txt without comments and blank lines, one
# qtest binary name a line
our_qtests() {
    grep -v '^#' "$VFIO_USER_LIB_DIR/qtests.txt" | sed '/^$/d'
}
