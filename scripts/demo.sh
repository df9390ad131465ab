#!/usr/bin/env bash
# make demo: boot a Linux guest whose NVMe controller lives in another
# process, reached with vfio-user-pci.
#
# The server is QEMU's own vfio-user server (-machine x-remote,
# -object x-vfio-user-server) exposing an NVMe controller backed by a file.
# The client is our QEMU, under TCG, with
#   -device vfio-user-pci,socket.path=...,secure-dma=on
# The guest (scripts/build-guest.sh: Debian's kernel, a busybox initramfs)
# binds its nvme driver, writes SIZE MiB of random data with O_DIRECT, reads
# them back and compares checksums; the demo then checks that the same bytes
# reached the server's disk file and prints a summary.
#
# Usage: demo.sh TOP     (make demo)
# Environment (make variables):
#   SECURE_DMA=on|off  on (default): no memory fd is sent, the server asks for
#                      every access (DMA_READ/WRITE), the client checks each;
#                      off: guest RAM is a shared memfd the server maps
#   VIOMMU=1           q35 + intel-iommu, intel_iommu=on in the guest
#   INTERACTIVE=1      keep the guest console open (a shell) after the run
#   SIZE=MiB           data written and read back (default 16)
#   DEVICE=nvme|gpio   gpio: libvfio-user's gpio-pci-idio-16 sample instead
#                      (also used when the server QEMU cannot be built)
#   DEMO_TRACE=0       no trace file, so no DMA counts (to measure what
#                      tracing every DMA request costs)
set -euo pipefail

TOP=$(realpath -e "${1:-$(dirname "$0")/..}")
SECURE_DMA=${SECURE_DMA:-on}
VIOMMU=${VIOMMU:-0}
INTERACTIVE=${INTERACTIVE:-0}
SIZE=${SIZE:-16}
DEVICE=${DEVICE:-nvme}
LOGDIR=$TOP/build/demo
start=$(date +%s.%N)

say() { echo "demo: $*"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
die() { echo "demo: error: $*" >&2; exit 1; }

case "$SECURE_DMA" in on|off) ;; 1|yes) SECURE_DMA=on;; 0|no) SECURE_DMA=off;;
    *) die "SECURE_DMA must be on or off";; esac
case "$VIOMMU" in 0|1) ;; *) die "VIOMMU must be 0 or 1";; esac
case "$DEVICE" in nvme|gpio) ;; *) die "DEVICE must be nvme or gpio";; esac
[[ "$SIZE" =~ ^[0-9]+$ ]] && [ "$SIZE" -ge 1 ] && [ "$SIZE" -le 256 ] ||
    die "SIZE must be 1..256 (MiB)"

# shellcheck source=guest-lib.sh
. "$TOP/scripts/guest-lib.sh"
trap lib_cleanup EXIT
mkdir -p "$LOGDIR"
rm -f "$LOGDIR"/*.log "$LOGDIR"/*.trace

# 1. What is missing gets built: QEMU (the make target did), the guest, the
#    server.
[ -x "$QEMU" ] || die "$QEMU missing: run make"
"$TOP/scripts/build-guest.sh" "$GUEST" | sed 's/^/demo: /'
if [ "$DEVICE" = nvme ] && [ ! -x "$SERVER_QEMU" ]; then
    if grep -q '^server:' "$TOP/Makefile"; then
        say "building the server QEMU (make server)"
        make -C "$TOP" --no-print-directory server ||
            die "make server failed"
    fi
    if [ ! -x "$SERVER_QEMU" ]; then
        say "no server QEMU at $SERVER_QEMU: showing the gpio-pci-idio-16 sample instead"
        DEVICE=gpio
    fi
fi
if [ "$DEVICE" = gpio ] && [ ! -x "$SAMPLES/gpio-pci-idio-16" ]; then
    make -C "$TOP" --no-print-directory libvfio-user || die "make libvfio-user failed"
fi

# 2. The server, in its own process.
sock=$LOGDIR/vfio-user.sock
if [ "$DEVICE" = nvme ]; then
    disk=$LOGDIR/nvme-disk.raw
    rm -f "$disk"
    truncate -s 64M "$disk"
    start_nvme_server "$sock" "$disk" "$LOGDIR/server.log" || die "server failed to start"
    say "server: QEMU x-vfio-user-server, NVMe on a 64 MiB file, pid $SERVER_PID, socket $sock"
    workload="demo=nvme size=$SIZE"
else
    start_gpio_server "$sock" "$LOGDIR/server.log" || die "server failed to start"
    say "server: libvfio-user gpio-pci-idio-16 sample, pid $SERVER_PID, socket $sock"
    workload="demo=gpio"
fi

# 3. The guest.  The client counts DMA requests only in trace events, so
#    they go to a file: one vfio_user_dma line per DMA_READ/WRITE served.
[ "$INTERACTIVE" = 1 ] && workload="$workload shell=1"
guest_args "$sock" "$SECURE_DMA" "$VIOMMU" "$workload"
trace=$LOGDIR/client.trace
rm -f "$trace"; touch "$trace"
[ "${DEMO_TRACE:-1}" = 0 ] || GUEST_ARGS+=(-trace "enable=vfio_user_dma*,file=$trace")
console=$LOGDIR/guest.log
say "client: vfio-user-pci secure-dma=$SECURE_DMA viommu=$VIOMMU, TCG, 512 MiB RAM$([ "$SECURE_DMA" = off ] && echo ' (shared memfd)')"
echo "demo: $QEMU ${GUEST_ARGS[*]}" > "$LOGDIR/client-cmdline.log"
guest_start=$(date +%s.%N)
if [ "$INTERACTIVE" = 1 ]; then
    say "interactive: the guest shell is on this terminal; 'poweroff -f' ends it (Ctrl-A x quits QEMU)"
    "$QEMU" "${GUEST_ARGS[@]}" -serial mon:stdio -echr 1 2>"$LOGDIR/client.log" |
        tee "$console" || true
else
    say "booting the guest (console below, also in $console)"
    set +e
    timeout 150 "$QEMU" "${GUEST_ARGS[@]}" -serial stdio 2>"$LOGDIR/client.log" |
        clean_console | tee "$console" |
        grep --line-buffered -E 'GUEST|nvme|idio|vfio|error|Error' | sed -u 's/^/  guest| /'
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 124 ] && say "guest timed out after 150 s"
fi
guest_end=$(date +%s.%N)
if [ -s "$LOGDIR/client.log" ]; then
    say "client QEMU said:"
    sed 's/^/  client| /' "$LOGDIR/client.log" | head -n 20
fi

# 4. The server's view: the bytes on its disk file.
result=$(guest_result "$console")
ok=0
disk_check=
case "$result" in
    "nvme PASS"*)
        guest_md5=$(sed -n 's/.*GUEST: pattern: .*md5 \([0-9a-f]*\).*/\1/p' "$console" | tail -n 1)
        disk_md5=$(head -c $((SIZE * 1048576)) "$disk" | md5sum | cut -c1-32)
        if [ "$guest_md5" = "$disk_md5" ]; then
            ok=1; disk_check="server's disk file holds the same $SIZE MiB (md5 $disk_md5)"
        else
            disk_check="server's disk file differs (guest md5 $guest_md5, file $disk_md5)"
        fi;;
    "gpio PASS"*) ok=1;;
esac
read -r rd rb wr wb refused maps mapsfd _ < <(dma_counts "$trace")
end=$(date +%s.%N)

echo
echo "=== vfio-user demo summary ==="
printf '%-12s %s\n' "device:" "$([ "$DEVICE" = nvme ] && echo "NVMe from QEMU's x-vfio-user-server" || echo "PCI-IDIO-16 gpio from libvfio-user's sample")"
printf '%-12s %s\n' "client:" "vfio-user-pci secure-dma=$SECURE_DMA, viommu=$VIOMMU, TCG"
printf '%-12s %s\n' "guest:" "${result:-no result (see $console)}"
if [ "$DEVICE" = nvme ] && [ -n "$result" ]; then
    w=$(sed -n 's/.* write=\([^ ]*\).*/\1/p' <<<"$result")
    r=$(sed -n 's/.* read=\([^ ]*\).*/\1/p' <<<"$result")
    [ -n "$w" ] && printf '%-12s %s\n' "throughput:" "write $w, read $r (guest dd, ${SIZE} MiB, O_DIRECT, bs=1M)"
fi
[ -n "$disk_check" ] && printf '%-12s %s\n' "server:" "$disk_check"
printf '%-12s %s\n' "DMA:" "$rd DMA_READ ($((rb / 1024)) KiB) + $wr DMA_WRITE ($((wb / 1024)) KiB) served by the client, $refused refused"
printf '%-12s %s\n' "" "$maps DMA_MAP sent, $mapsfd with a memory fd (counted from trace events vfio_user_dma*, $trace)"
printf '%-12s %s\n' "wall time:" "$(secs "$start" "$end") s (guest $(secs "$guest_start" "$guest_end") s)"
printf '%-12s %s\n' "logs:" "$LOGDIR"
if [ "$ok" != 1 ]; then
    echo "demo: last lines of the guest console ($console):"
    tail -n 15 "$console" | sed 's/^/  guest| /'
    echo "demo: FAILED (see $LOGDIR)"
    exit 1
fi
echo "demo: PASS"
