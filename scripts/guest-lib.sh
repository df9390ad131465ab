# shellcheck shell=bash disable=SC2054
# Helpers shared by scripts/demo.sh, scripts/guest-tests.sh and
# scripts/bench-guest.sh: start a vfio-user server in another process, boot
# the Linux guest under TCG with vfio-user-pci, read the results.  Sourced,
# not run.
#
# Needs: TOP (the repository), LOGDIR (created by the caller).

QEMU=${QEMU:-$TOP/build/qemu/build/qemu-system-x86_64}
SERVER_QEMU=${SERVER_QEMU:-$TOP/build/qemu/build-server/qemu-system-x86_64}
SAMPLES=${SAMPLES:-$TOP/build/libvfio-user/samples}
GUEST=${GUEST:-$TOP/build/guest}

# PIDs we started; only these are ever killed.
OUR_PIDS=()

lib_cleanup() {
    local p live
    # Only children of this shell that are still running (jobs -p), so a
    # reaped pid that the system reused is never signalled.
    live=" $(jobs -p | tr '\n' ' ') "
    for p in "${OUR_PIDS[@]}"; do
        case "$live" in *" $p "*) kill "$p" 2>/dev/null || true;; esac
    done
    for p in "${OUR_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    OUR_PIDS=()
}

wait_socket() {   # PATH PID SECONDS
    local i=0
    while [ ! -S "$1" ]; do
        kill -0 "$2" 2>/dev/null || return 1
        [ $i -lt $(($3 * 10)) ] || return 1
        sleep 0.1; i=$((i + 1))
    done
}

# start_nvme_server SOCK DISK LOG: QEMU's x-vfio-user-server exposing an
# NVMe controller whose namespace is the raw file DISK.  Sets SERVER_PID.
start_nvme_server() {
    local sock=$1 disk=$2 log=$3
    rm -f "$sock"
    "$SERVER_QEMU" -machine x-remote,vfio-user=on -accel tcg \
        -nodefaults -display none -monitor none -serial none \
        -blockdev driver=file,filename="$disk",node-name=disk0 \
        -device nvme,drive=disk0,serial=vfiouser0,id=nvme0 \
        -object x-vfio-user-server,id=vfuobj0,type=unix,path="$sock",device=nvme0 ${SERVER_EXTRA:-} \
        >"$log" 2>&1 &
    SERVER_PID=$!
    OUR_PIDS+=("$SERVER_PID")
    wait_socket "$sock" "$SERVER_PID" 20 || {
        echo "server did not create $sock; its log ($log):" >&2
        cat "$log" >&2
        return 1
    }
}

# start_gpio_server SOCK LOG [OPTION...]: libvfio-user's gpio-pci-idio-16
# sample (-v: the library logs every region access it serves to LOG).
start_gpio_server() {
    local sock=$1 log=$2
    shift 2
    rm -f "$sock"
    "$SAMPLES/gpio-pci-idio-16" "$@" "$sock" >"$log" 2>&1 &
    SERVER_PID=$!
    OUR_PIDS+=("$SERVER_PID")
    wait_socket "$sock" "$SERVER_PID" 10 || {
        echo "gpio server did not create $sock; its log ($log):" >&2
        cat "$log" >&2
        return 1
    }
}

# guest_args SOCK SECURE(on|off) VIOMMU(0|1) CMDLINE: sets GUEST_ARGS, the
# client QEMU command line (without console options).
guest_args() {
    local sock=$1 secure=$2 viommu=$3 cmdline=$4 machine
    if [ "$viommu" = 1 ]; then
        machine=q35,kernel-irqchip=split
        cmdline="$cmdline intel_iommu=on"
    else
        machine=pc
    fi
    GUEST_ARGS=(-machine "$machine" -m 512M -accel tcg -nodefaults
                -display none -no-reboot -nic none
                -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.cpio.gz"
                -append "console=ttyS0 loglevel=5 panic=-1 $cmdline${GUEST_APPEND:+ $GUEST_APPEND}")
    # Without secure-dma the server maps guest RAM: give RAM an fd.
    if [ "$secure" = off ]; then
        GUEST_ARGS+=(-object memory-backend-memfd,id=mem,size=512M,share=on
                     -machine memory-backend=mem)
    fi
    if [ "$viommu" = 1 ]; then
        GUEST_ARGS+=(-device intel-iommu,caching-mode=on)
    fi
    GUEST_ARGS+=(-device "vfio-user-pci,id=vfu0,socket.type=unix,socket.path=$sock,secure-dma=$secure${VFU_DEVICE_EXTRA:+,$VFU_DEVICE_EXTRA}")
}

# start_client LOGPREFIX: the client QEMU in the background with the
# console in LOGPREFIX.console and QMP on LOGPREFIX.qmp.  Sets CLIENT_PID.
start_client() {
    rm -f "$1.console" "$1.qmp"
    "$QEMU" "${GUEST_ARGS[@]}" -serial "file:$1.console" \
        -qmp "unix:$1.qmp,server=on,wait=off" ${CLIENT_EXTRA:-} >"$1.client.log" 2>&1 &
    CLIENT_PID=$!
    OUR_PIDS+=("$CLIENT_PID")
}

# wait_console FILE REGEX SECONDS PID: until REGEX shows up in FILE.
wait_console() {
    local i=0
    while ! grep -qE "$2" "$1" 2>/dev/null; do
        [ $i -lt $(($3 * 10)) ] || return 1
        kill -0 "$4" 2>/dev/null || { grep -qE "$2" "$1" 2>/dev/null; return; }
        sleep 0.1; i=$((i + 1))
    done
}

# wait_exit PID SECONDS: 0 if PID ended in time (and reaps it).
wait_exit() {
    local i=0
    while kill -0 "$1" 2>/dev/null; do
        [ $i -lt $(($2 * 10)) ] || return 1
        sleep 0.1; i=$((i + 1))
    done
    wait "$1" 2>/dev/null || true
}

# Strip the console's escape sequences and carriage returns.
clean_console() { sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' -e 's/\r//g'; }

# guest_result LOG: the GUEST-RESULT line of a console log.
guest_result() { sed -n 's/.*GUEST-RESULT: //p' "$1" | tail -n 1; }

# dma_counts TRACE: "READS RBYTES WRITES WBYTES REFUSED MAPS MAPS_WITH_FD
# POSTED_WRITES" (writes the server sent with No_reply)
# from a -trace 'vfio_user_dma*' log (log backend: one line per event).
dma_counts() {
    awk '
        function hex(s,   i, v) {
            v = 0; s = tolower(s); sub(/^0x/, "", s)
            for (i = 1; i <= length(s); i++)
                v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        $1 == "vfio_user_dma" {
            for (i = 2; i <= NF; i++) {
                if ($i == "cmd") c = $(i + 1)
                if ($i == "count") n = hex($(i + 1))
                if ($i == "ret") r = $(i + 1)
                if ($i == "no_reply") p = $(i + 1)
            }
            if (r == 0 && c == 11) { rd++; rb += n }
            if (r == 0 && c == 12) { wr++; wb += n; pw += p }
        }
        $1 == "vfio_user_dma_refused" { ref++ }
        $1 == "vfio_user_dma_map" { m++; if ($NF != "-1") mf++ }
        END { printf "%d %d %d %d %d %d %d %d\n", rd, rb, wr, wb, ref, m, mf, pw }
    ' "$1" 2>/dev/null || echo "0 0 0 0 0 0 0 0"
}
