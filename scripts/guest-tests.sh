#!/usr/bin/env bash
# Guest tests: a Linux guest (scripts/build-guest.sh) under TCG drives a
# device served over vfio-user by another process.  One PASS/FAIL/SKIP line
# per test, then "N passed, N failed"; exit status non-zero on a failure.
#
#   nvme-fd        NVMe from QEMU's x-vfio-user-server, secure-dma=off,
#                  shared memfd RAM (fds sent): write, read back, compare,
#                  and the server's disk file holds the data; no DMA by
#                  message at all (the data went through the mapping)
#   nvme-secure    the same with secure-dma=on (no fd; DMA_READ/WRITE,
#                  the server's writes posted: No_reply, fenced by a read
#                  before the interrupt)
#   gpio           libvfio-user's gpio-pci-idio-16 sample: the guest driver
#                  binds, the gpio chip appears, and the server's log shows
#                  exactly one 1-byte REGION_WRITE to an output register
#                  per output write of the guest
#   gpio-migrate   the guest sets and reads back the gpio outputs in a loop
#                  while its VM migrates to a second QEMU with its own gpio
#                  server: the migration completes and the loop goes on on
#                  the destination, reading back the pins it set
#   server-killed  the server is killed while the guest does I/O: the guest
#                  sees I/O errors, the client QEMU stays up (QMP answers)
#                  and reports the loss (the "connection to the server
#                  lost" error and a VFIO_USER_SERVER_LOST event for the
#                  device), the guest powers off cleanly (fds sent)
#   server-killed-secure   the same with secure-dma=on: the server dies
#                  while DMA_READ/WRITE requests are in flight
#   nvme-viommu    nvme-secure behind a vIOMMU (q35, intel-iommu with
#                  caching-mode=on, guest intel_iommu=on): the client's
#                  DMA maps follow the guest's IOMMU mappings (page-sized
#                  DMA_MAPs at IOVAs, DMA_UNMAPs as the guest unmaps)
#   nvme-viommu-fd the same with secure-dma=off (memfd RAM, fds sent)
#   irq-msix-x10   "no lost interrupt": the NVMe test (2 MiB) 10 times in a
#                  row with MSI-X; no run may see an nvme driver timeout
#                  (nvme_core.io_timeout=10: the guest's dmesg must not
#                  contain "timeout")
#   irq-intx-x10   the same with INTx (guest pci=nomsi; the nvme interrupt
#                  must be an IO-APIC one); in both, no interrupt storm
#                  either ("nobody cared", or more than IRQ_MAX interrupts)
#   nvme-reconnect the server is killed and restarted 2 s later under the
#                  guest's NVMe I/O loop, RECONNECT_KILLS (10) times: the
#                  loop goes on each time, no I/O error, no mismatch, and
#                  the guest stalls less than MAX_STALL (8) s per kill
#   nvme-reconnect-secure  the same with secure-dma=on
#
# Usage: guest-tests.sh [TOP] [TEST...]     (default: all)
# Debugging: GUEST_APPEND is added to the guest's kernel command line
# (loglevel=8 dyndbg="file drivers/pci/* +p"), CLIENT_EXTRA and
# SERVER_EXTRA to the client's and the nvme server's QEMU options
# (-trace pci_nvme_io_cmd), VFU_DEVICE_EXTRA to the vfio-user-pci
# device's (x-poll-max-ns=0).
# Needs: make qemu, make server (tests needing it are SKIPped otherwise),
# make libvfio-user.  Logs: build/guest-tests/.
set -uo pipefail

TOP=$(realpath -e "${1:-$(dirname "$0")/..}")
shift || true
LOGDIR=$TOP/build/guest-tests
TEST_TIMEOUT=${TEST_TIMEOUT:-150}
SIZE=${SIZE:-8}

# shellcheck source=guest-lib.sh
. "$TOP/scripts/guest-lib.sh"
trap lib_cleanup EXIT
mkdir -p "$LOGDIR"

[ -x "$QEMU" ] || { echo "guest-tests: $QEMU missing: run make" >&2; exit 1; }
"$TOP/scripts/build-guest.sh" "$GUEST" >"$LOGDIR/build-guest.log" 2>&1 || {
    cat "$LOGDIR/build-guest.log" >&2; exit 1; }

passed=0 failed=0 skipped=0
report() {   # STATUS NAME SECONDS DETAIL
    printf '%s: %s (%s s) %s\n' "$1" "$2" "$3" "$4"
    case $1 in PASS) passed=$((passed + 1));; FAIL) failed=$((failed + 1));;
        *) skipped=$((skipped + 1));; esac
}

qmp_status() {   # SOCKET: the VM status via QMP, or nothing
    /usr/bin/python3 - "$1" <<'EOF' 2>/dev/null
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
for cmd in ("qmp_capabilities", "query-status"):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            break
print(r.get("return", {}).get("status", r))
EOF
}

# qmp_events SOCKET OUT: in the background, hold a QMP connection and
# append every event to OUT, one JSON object a line, until QEMU exits.
# OUT starts with a line "ready" once events can arrive.  QEMU sends an
# event only to monitors connected at the time, so this must be up before
# the event.  Sets EVENTS_PID.
qmp_events() {
    /usr/bin/python3 - "$1" "$2" <<'EOF' &
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(200):
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("qmp_events: cannot connect to " + sys.argv[1])
f = s.makefile("rw")
out = open(sys.argv[2], "a", buffering=1)
json.loads(f.readline())
f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n"); f.flush()
while "return" not in json.loads(f.readline()):
    pass
out.write("ready\n")
for line in f:
    r = json.loads(line)
    if "event" in r:
        out.write(json.dumps(r) + "\n")
EOF
    EVENTS_PID=$!
    OUR_PIDS+=("$EVENTS_PID")
}

have_server() { [ -x "$SERVER_QEMU" ]; }

# qmp_migrate SRC_QMP DST_QMP URI: migrate-incoming on the destination,
# migrate on the source, wait (up to 120 s) for the end; prints the
# source's final "status total-time-ms downtime-ms".
qmp_migrate() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'EOF'
import json, socket, sys, time
def cmd(f, name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r:
            return r["return"]
        if "error" in r:
            sys.exit("%s: %s" % (name, r["error"]["desc"]))
def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile("rw")
    json.loads(f.readline())
    cmd(f, "qmp_capabilities")
    return f
src, dst = connect(sys.argv[1]), connect(sys.argv[2])
cmd(dst, "migrate-incoming", uri=sys.argv[3])
cmd(src, "migrate", uri=sys.argv[3])
for _ in range(1200):
    r = cmd(src, "query-migrate")
    if r.get("status") in ("completed", "failed", "cancelled"):
        break
    time.sleep(0.1)
print(r.get("status"), r.get("total-time", -1), r.get("downtime", -1))
EOF
}

test_nvme() {   # NAME SECURE [VIOMMU]
    local name=$1 secure=$2 viommu=${3:-0} p=$LOGDIR/$1 t0=$SECONDS res disk gmd5 dmd5
    local rd wr ref maps mapsfd posted detail pmaps unmaps punmaps
    have_server || { report SKIP "$name" 0 "no $SERVER_QEMU (make server)"; return; }
    disk=$p.disk
    rm -f "$disk" "$p.trace"; truncate -s 64M "$disk"
    start_nvme_server "$p.sock" "$disk" "$p.server.log" ||
        { report FAIL "$name" $((SECONDS - t0)) "server did not start ($p.server.log)"; lib_cleanup; return; }
    guest_args "$p.sock" "$secure" "$viommu" "demo=nvme size=$SIZE"
    GUEST_ARGS+=(-trace "enable=vfio_user_dma*,file=$p.trace")
    start_client "$p"
    if ! wait_exit "$CLIENT_PID" "$TEST_TIMEOUT"; then
        kill "$CLIENT_PID"; wait "$CLIENT_PID" 2>/dev/null
        report FAIL "$name" $((SECONDS - t0)) "guest did not finish in $TEST_TIMEOUT s; $(guest_result "$p.console") ($p.console)"
        lib_cleanup; return
    fi
    kill "$SERVER_PID" 2>/dev/null; lib_cleanup
    res=$(guest_result "$p.console")
    read -r rd _ wr _ ref maps mapsfd posted < <(dma_counts "$p.trace")
    detail="$res; DMA_READ $rd, DMA_WRITE $wr ($posted posted), refused $ref, DMA_MAP $maps ($mapsfd with fd)"
    if [ "$viommu" = 1 ]; then
        # Behind the vIOMMU the maps follow the guest's IOMMU mappings:
        # with fds, one 4 KiB page at an IOVA each, unmapped when the
        # guest unmaps it; under secure-dma the client keeps the pages
        # and tells the server of the vIOMMU's IOVA space in blocks
        # (maps of 1 MiB or more, once the vIOMMU range is there).
        pmaps=$(grep -c '^vfio_user_dma_map .* size 0x1000 ' "$p.trace")
        unmaps=$(grep -c '^vfio_user_dma_unmap ' "$p.trace")
        punmaps=$(grep -c '^vfio_user_dma_unmap .* size 0x1000$' "$p.trace")
        ranges=$(grep -c '^vfio_user_dma_iommu_range .* add=1 ' "$p.trace")
        # (sizes in hex: 0x100000, 1 MiB, has 8 characters)
        blocks=$(awk '/^vfio_user_dma_iommu_range .* add=1 / { on = 1 }
            on && $1 == "vfio_user_dma_map" {
                for (i = 2; i < NF; i++)
                    if ($i == "size" && length($(i + 1)) >= 8) n++ }
            END { print n + 0 }' "$p.trace")
        detail="$detail, $pmaps page-sized; DMA_UNMAP $unmaps ($punmaps page-sized); vIOMMU ranges $ranges, IOVA blocks $blocks"
    fi
    case "$res" in
        "nvme PASS"*) ;;
        *) report FAIL "$name" $((SECONDS - t0)) "$detail ($p.console)"; return;;
    esac
    gmd5=$(sed -n 's/.*GUEST: pattern: .*md5 \([0-9a-f]*\).*/\1/p' "$p.console" | tail -n 1)
    dmd5=$(head -c $((SIZE * 1048576)) "$disk" | md5sum | cut -c1-32)
    if [ "$gmd5" != "$dmd5" ]; then
        report FAIL "$name" $((SECONDS - t0)) "server's disk differs from what the guest wrote; $detail"
    elif [ "$secure" = on ] && { [ "$rd" = 0 ] || [ "$wr" = 0 ] || [ "$mapsfd" != 0 ]; }; then
        report FAIL "$name" $((SECONDS - t0)) "secure-dma: expected DMA_READ/WRITE and no fd; $detail"
    elif [ "$secure" = on ] && [ "$posted" = 0 ]; then
        # The server posts its writes (No_reply) and fences them with a
        # read before each interrupt: the data above is what that gives.
        report FAIL "$name" $((SECONDS - t0)) "secure-dma: expected posted DMA_WRITEs; $detail"
    elif [ "$secure" = off ] && [ "$mapsfd" = 0 ]; then
        report FAIL "$name" $((SECONDS - t0)) "no DMA_MAP carried an fd; $detail"
    elif [ "$secure" = off ] && [ "$(grep -cE '^vfio_user_dma(_refused)? ' "$p.trace")" != 0 ]; then
        # With the fd the server reaches guest RAM through the mapping:
        # any DMA_READ/WRITE request (served, failed or refused) means
        # some of the data did not go there.
        report FAIL "$name" $((SECONDS - t0)) "fd mapping sent, yet DMA by message; $detail ($p.trace)"
    elif [ "$viommu" = 1 ] && [ "$secure" = off ] &&
         { [ "$pmaps" = 0 ] || [ "$unmaps" = 0 ]; }; then
        report FAIL "$name" $((SECONDS - t0)) "vIOMMU: expected page-sized DMA_MAPs and DMA_UNMAPs; $detail ($p.trace)"
    elif [ "$viommu" = 1 ] && [ "$secure" = on ] &&
         { [ "$pmaps" != 0 ] || [ "$ranges" = 0 ] || [ "$blocks" = 0 ]; }; then
        report FAIL "$name" $((SECONDS - t0)) "vIOMMU, secure-dma: expected IOVA blocks, no page-sized DMA_MAP; $detail ($p.trace)"
    else
        report PASS "$name" $((SECONDS - t0)) "$detail"
    fi
    rm -f "$disk"
}

test_gpio() {
    local name=gpio p=$LOGDIR/gpio t0=$SECONDS res writes nvals nlines expect
    [ -x "$SAMPLES/gpio-pci-idio-16" ] ||
        { report SKIP $name 0 "no $SAMPLES/gpio-pci-idio-16 (make libvfio-user)"; return; }
    start_gpio_server "$p.sock" "$p.server.log" -v ||
        { report FAIL $name $((SECONDS - t0)) "server did not start"; lib_cleanup; return; }
    guest_args "$p.sock" on 0 "demo=gpio"
    start_client "$p"
    if ! wait_exit "$CLIENT_PID" "$TEST_TIMEOUT"; then
        report FAIL $name $((SECONDS - t0)) "guest did not finish in $TEST_TIMEOUT s ($p.console)"
        lib_cleanup; return
    fi
    lib_cleanup
    res=$(guest_result "$p.console")
    # Counted on the server: with -v, libvfio-user logs every region
    # access it served ("region2: wrote V to (OFFSET:1)").  The driver's
    # output registers are BAR2 offsets 0 (lines 0-7) and 4 (lines 8-15);
    # the guest writes one of them once per value it sets and once per
    # line it makes an output, so the server must see exactly that many.
    writes=$(grep -cE 'gpio: region2: wrote [0-9a-fx]+ to \((0|0x4):1\)$' "$p.server.log")
    nvals=$(sed -n 's/.*output-writes=\([0-9]*\).*/\1/p' <<<"$res")
    nlines=$(sed -n 's/.*GUEST: set output lines\(.*\): [0-9]* writes.*/\1/p' "$p.console" | tail -n 1 | wc -w)
    expect=$((${nvals:-0} + nlines))
    case "$res" in
        "gpio PASS"*)
            if [ "${nvals:-0}" -gt 0 ] && [ "$writes" = "$expect" ]; then
                report PASS $name $((SECONDS - t0)) "$res; the server served $writes 1-byte REGION_WRITEs to the output registers: the guest's $nvals value writes and $nlines lines set to output"
            else
                report FAIL $name $((SECONDS - t0)) "$res; the server served $writes 1-byte REGION_WRITEs to the output registers, the guest made ${nvals:-0} value writes and set $nlines lines to output ($p.server.log)"
            fi;;
        *) report FAIL $name $((SECONDS - t0)) "${res:-no result} ($p.console)";;
    esac
}

# test_gpio_migrate: the guest sets the gpio chip's 16 outputs to a new
# pattern every round and reads them back HOLD (5) s later (demo=
# gpio-loop).  Right after it has set them in round 2, its VM migrates to
# a second QEMU with a gpio server of its own (secure-dma=on: the client
# tracks the device's DMA, of which there is none).  PASS needs the
# migration to complete inside that round, the round to read back on the
# destination the pins set on the source (its "set" line is on the
# source's console, its "ok" line on the destination's), the loop to go
# on there for 2 more rounds, and each server to have seen its side.
GPIO_HOLD=${GPIO_HOLD:-5}
test_gpio_migrate() {
    local name=gpio-migrate p=$LOGDIR/gpio-migrate t0=$SECONDS
    local a dargs=() dst mig st total down i after
    [ -x "$SAMPLES/gpio-pci-idio-16" ] ||
        { report SKIP $name 0 "no $SAMPLES/gpio-pci-idio-16 (make libvfio-user)"; return; }
    rm -f "$p.mig" "$p.dst.console" "$p.dst.qmp"
    start_gpio_server "$p.sock" "$p.server.log" -v &&
        start_gpio_server "$p.dst.sock" "$p.dst.server.log" -v ||
        { report FAIL $name $((SECONDS - t0)) "a server did not start"; lib_cleanup; return; }
    guest_args "$p.sock" on 0 "demo=gpio-loop loops=100000 hold=$GPIO_HOLD"
    for a in "${GUEST_ARGS[@]}"; do
        case $a in
            vfio-user-pci,*) dargs+=("${a/$p.sock/$p.dst.sock}");;
            *) dargs+=("$a");;
        esac
    done
    start_client "$p"
    "$QEMU" "${dargs[@]}" -serial "file:$p.dst.console" \
        -qmp "unix:$p.dst.qmp,server=on,wait=off" -incoming defer \
        >"$p.dst.client.log" 2>&1 &
    dst=$!
    OUR_PIDS+=("$dst")
    if ! wait_console "$p.console" 'GPIO-LOOP 2 set' 120 "$CLIENT_PID"; then
        report FAIL $name $((SECONDS - t0)) "$(guest_result "$p.console"); the loop never ran ($p.console)"
        lib_cleanup; return
    fi
    mig=$(qmp_migrate "$p.qmp" "$p.dst.qmp" "unix:$p.mig" 2>&1)
    read -r st total down <<<"$mig"
    if [ "$st" != completed ]; then
        report FAIL $name $((SECONDS - t0)) "migration: $mig ($p.client.log, $p.dst.client.log)"
        lib_cleanup; return
    fi
    kill "$CLIENT_PID"
    for i in $(seq 1 $((GPIO_HOLD * 30))); do
        [ "$(grep -c 'GPIO-LOOP .* ok' "$p.dst.console")" -lt 3 ] || break
        grep -q 'GUEST-RESULT' "$p.dst.console" && break
        kill -0 "$dst" 2>/dev/null || break
        sleep 0.2
    done
    lib_cleanup
    after=$(grep -c 'GPIO-LOOP .* ok' "$p.dst.console")
    if [ "$after" -lt 3 ] || grep -q 'GUEST-RESULT' "$p.dst.console"; then
        report FAIL $name $((SECONDS - t0)) "after the migration: $after rounds; $(grep -h 'MISMATCH\|GUEST-RESULT' "$p.dst.console" | head -n 2) ($p.dst.console)"
        return
    fi
    if grep -q 'GPIO-LOOP 2 ok' "$p.console" || ! grep -q 'GPIO-LOOP 2 ok' "$p.dst.console"; then
        report FAIL $name $((SECONDS - t0)) "the migration ($total ms) did not fall inside round 2 ($p.console, $p.dst.console)"
        return
    fi
    # Each server saw its side (the library logs the device's transitions)
    if ! grep -q 'transition to state' "$p.server.log" ||
       ! grep -q 'transition to state' "$p.dst.server.log"; then
        report FAIL $name $((SECONDS - t0)) "a server saw no migration ($p.server.log, $p.dst.server.log)"
        return
    fi
    report PASS $name $((SECONDS - t0)) "migrated in ${total} ms (downtime ${down} ms) while the guest held its pins in round 2: the destination read back the pins set on the source, and the loop went on for $((after - 1)) more rounds there"
    rm -f "$p.mig"
}

test_server_killed() {   # NAME SECURE
    local name=$1 secure=$2 p=$LOGDIR/$1 t0=$SECONDS res st lost ev
    have_server || { report SKIP $name 0 "no $SERVER_QEMU (make server)"; return; }
    rm -f "$p.disk"; truncate -s 64M "$p.disk"
    start_nvme_server "$p.sock" "$p.disk" "$p.server.log" ||
        { report FAIL $name $((SECONDS - t0)) "server did not start"; lib_cleanup; return; }
    # Short NVMe timeouts so that the guest gives up on the dead
    # controller quickly.
    guest_args "$p.sock" "$secure" 0 "demo=nvme-loop size=4 loops=500 nvme_core.io_timeout=5 nvme_core.admin_timeout=5 nvme_core.max_retries=0"
    # A second QMP monitor, held by qmp_events, to catch the loss event.
    rm -f "$p.events" "$p.qmp-ev"
    GUEST_ARGS+=(-qmp "unix:$p.qmp-ev,server=on,wait=off")
    start_client "$p"
    qmp_events "$p.qmp-ev" "$p.events"
    if ! wait_console "$p.console" 'IO-LOOP 2 ok' 90 "$CLIENT_PID"; then
        report FAIL $name $((SECONDS - t0)) "guest I/O never started ($p.console)"
        lib_cleanup; return
    fi
    if ! wait_console "$p.events" '^ready$' 10 "$EVENTS_PID"; then
        report FAIL $name $((SECONDS - t0)) "no QMP connection for events ($p.events)"
        lib_cleanup; return
    fi
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null
    echo "test: server pid $SERVER_PID killed at $((SECONDS - t0)) s" >> "$p.console"
    sleep 2
    st=$(qmp_status "$p.qmp")
    if ! kill -0 "$CLIENT_PID" 2>/dev/null; then
        report FAIL $name $((SECONDS - t0)) "client QEMU died with the server: $(tail -n 3 "$p.client.log")"
        lib_cleanup; return
    fi
    if ! wait_console "$p.console" 'GUEST-RESULT' 90 "$CLIENT_PID"; then
        report FAIL $name $((SECONDS - t0)) "guest gave no result 90 s after the kill (QMP status: ${st:-none}; $p.console)"
        lib_cleanup; return
    fi
    res=$(guest_result "$p.console")
    if ! wait_exit "$CLIENT_PID" 30; then
        report FAIL $name $((SECONDS - t0)) "$res; but the guest did not power off ($p.console)"
        lib_cleanup; return
    fi
    lib_cleanup
    # The loss as the client reports it (hw/vfio-user/proxy.c and the
    # VFIO_USER_SERVER_LOST event of hw/vfio-user/pci.c), for our device.
    lost=$(grep -m 1 'vfio-user: .*: connection to the server lost: ' "$p.client.log")
    ev=$(grep -m 1 '"event": "VFIO_USER_SERVER_LOST".*"device-id": "vfu0"' "$p.events")
    case "$res" in
        *IOERROR*)
            if [ "$st" = running ] && [ -n "$lost" ] && [ -n "$ev" ]; then
                report PASS $name $((SECONDS - t0)) "$res; QMP status after kill: $st; VFIO_USER_SERVER_LOST for vfu0; client said: $lost"
            else
                report FAIL $name $((SECONDS - t0)) "$res; QMP status: ${st:-no answer}; loss error: ${lost:-none}; VFIO_USER_SERVER_LOST: ${ev:-none} ($p.client.log, $p.events)"
            fi;;
        *) report FAIL $name $((SECONDS - t0)) "${res:-no result}; guest saw no I/O error ($p.console)";;
    esac
    rm -f "$p.disk"
}

# test_irq NAME MODE(msix|intx) RUNS: "no lost interrupt".  The NVMe test
# with SIZE_IRQ MiB, RUNS times in a row, each with a new server (QEMU's
# server drops its device when the client disconnects: it cannot be
# reused, even with -machine x-remote,auto-shutdown=off).  A lost
# interrupt makes the guest's nvme driver poll the command after
# nvme_core.io_timeout s and log "I/O ... timeout": every run must end
# with dmesg-timeout=0 on its result line, the data read back equal to
# what was written, the interrupt of the mode asked for (intx: guest
# pci=nomsi, an IO-APIC line; msix: PCI-MSI), and no interrupt storm.
SIZE_IRQ=${SIZE_IRQ:-2}
IRQ_RUN_TIMEOUT=${IRQ_RUN_TIMEOUT:-60}
IRQ_MAX=${IRQ_MAX:-1000}   # nvme interrupts of a run: about 30 for 2 MiB
test_irq() {
    local name=$1 mode=$2 runs=$3 p=$LOGDIR/$1 t0=$SECONDS i rp t1 res args
    local times=() irqs=0 n fails=0 first= chip why
    have_server || { report SKIP "$name" 0 "no $SERVER_QEMU (make server)"; return; }
    args="demo=nvme size=$SIZE_IRQ nvme_core.io_timeout=10 nvme_core.admin_timeout=10"
    [ "$mode" = intx ] && args="$args pci=nomsi"
    rm -f "$p".*
    for ((i = 1; i <= runs; i++)); do
        rp=$p.$i t1=$SECONDS why=
        rm -f "$rp.disk"; truncate -s 16M "$rp.disk"
        if ! start_nvme_server "$rp.sock" "$rp.disk" "$rp.server.log"; then
            why="server did not start ($rp.server.log)"
        else
            guest_args "$rp.sock" on 0 "$args"
            start_client "$rp"
            if ! wait_exit "$CLIENT_PID" "$IRQ_RUN_TIMEOUT"; then
                why="guest did not finish in $IRQ_RUN_TIMEOUT s; $(guest_result "$rp.console")"
            fi
        fi
        lib_cleanup
        times+=($((SECONDS - t1)))
        if [ -z "$why" ]; then
            res=$(guest_result "$rp.console")
            chip=$(sed -n 's/.* irq=\([^ ]*\).*/\1/p' <<<"$res")
            n=$(sed -n 's/.* irqs=\([0-9]*\).*/\1/p' <<<"$res")
            case "$res" in
                "nvme PASS"*" dmesg-timeout=0"*) ;;
                "nvme PASS"*) why="driver timeout: $res; $(grep 'dmesg timeout:' "$rp.console" | head -n 2 | tr '\n' ' ')";;
                *) why="${res:-no result}";;
            esac
        fi
        if [ -z "$why" ]; then
            case "$mode:$chip" in
                msix:*MSI*) ;;
                intx:*IO-APIC*) case "$chip" in *MSI*) why="an MSI nvme interrupt with pci=nomsi: $res";; esac;;
                *) why="nvme interrupt is '$chip', not $mode: $res";;
            esac
            [ -n "$why" ] || [ "${n:-0}" -gt 0 ] || why="no nvme interrupt counted: $res"
        fi
        # Not too many either: a line left asserted that no handler claims
        # is a storm, which the guest's kernel ends by disabling the line
        # ("irq N: nobody cared") and polling it, so no nvme timeout shows.
        if [ -z "$why" ]; then
            case "$res" in
                *" nobody-cared=0"*) [ "$n" -le "$IRQ_MAX" ] ||
                    why="interrupt storm: $n nvme interrupts (more than $IRQ_MAX): $res";;
                *) why="interrupt storm, line disabled: $res; $(grep 'dmesg irq:' "$rp.console" | head -n 3 | tr '\n' ' ')";;
            esac
        fi
        if [ -n "$why" ]; then
            fails=$((fails + 1))
            [ -n "$first" ] || first="run $i: $why ($rp.console)"
            [ "$fails" -lt 3 ] || { i=$((i + 1)); break; }
        else
            irqs=$((irqs + n))
            rm -f "$rp.disk" "$rp.sock"
        fi
    done
    n=$(printf '%s\n' "${times[@]}" | sort -n | sed -n '1p;$p' | tr '\n' ' ')
    if [ "$fails" = 0 ]; then
        report PASS "$name" $((SECONDS - t0)) "$runs runs, each ${SIZE_IRQ} MiB written and read back, irq=$chip, $irqs nvme interrupts, no driver timeout; run time min/max ${n% }s"
    else
        report FAIL "$name" $((SECONDS - t0)) "$fails of $((i - 1)) runs failed; first: $first"
    fi
}

# test_reconnect NAME SECURE KILLS: the server is SIGKILLed while the
# guest writes, reads back and compares NVMe data in a loop, and a new one
# is started 2 s later on the same socket and disk file, KILLS times in
# one boot.  q35, the device below a pcie-root-port (AER), reconnect-ms.
# Each time the client must reconnect (VFIO_USER_SERVER_RECONNECTED) and
# the guest's loop go on without an I/O error or a mismatch (the guest's
# error recovery, started by the Surprise Down the client reports at the
# port, resets the controller and resubmits what was in flight).  The
# stall: guest time from the last round before a kill to the first after;
# with the 2 s outage, about 2.5 s when nothing else runs.
RECONNECT_KILLS=${RECONNECT_KILLS:-10}
MAX_STALL=${MAX_STALL:-8}
test_reconnect() {   # NAME SECURE KILLS
    local name=$1 secure=$2 kills=$3 p=$LOGDIR/$1 t0=$SECONDS
    local k rounds back a args=() stall max_stall=0 stalls=
    have_server || { report SKIP $name 0 "no $SERVER_QEMU (make server)"; return; }
    rm -f "$p.disk"; truncate -s 64M "$p.disk"
    start_nvme_server "$p.sock" "$p.disk" "$p.server.log" ||
        { report FAIL $name $((SECONDS - t0)) "server did not start"; lib_cleanup; return; }
    guest_args "$p.sock" "$secure" 0 "demo=nvme-loop size=2 loops=1000000"
    # q35, and the device below a root port (created before it)
    for a in "${GUEST_ARGS[@]}"; do
        case $a in
            pc) args+=(q35);;
            vfio-user-pci,*) args+=(pcie-root-port,id=rp0,chassis=1 -device
                                    "$a,bus=rp0,reconnect-ms=100");;
            *) args+=("$a");;
        esac
    done
    GUEST_ARGS=("${args[@]}")
    start_client "$p"
    if ! wait_console "$p.console" 'IO-LOOP 2 ok' 120 "$CLIENT_PID"; then
        report FAIL $name $((SECONDS - t0)) "guest I/O never started ($p.console)"
        lib_cleanup; return
    fi
    for k in $(seq 1 "$kills"); do
        kill -KILL "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
        rounds=$(grep -c 'IO-LOOP .* ok' "$p.console")
        echo "test: server killed after round $rounds" >> "$p.client.log"
        sleep 2
        start_nvme_server "$p.sock" "$p.disk" "$p.server.log.$k" ||
            { report FAIL $name $((SECONDS - t0)) "server $k did not start"; lib_cleanup; return; }
        if ! wait_console "$p.console" "IO-LOOP $((rounds + 2)) ok|GUEST-RESULT" 120 "$CLIENT_PID" ||
           grep -q 'GUEST-RESULT' "$p.console"; then
            report FAIL $name $((SECONDS - t0)) "kill $k: $(guest_result "$p.console" || true); the loop did not go on ($p.console, $p.client.log)"
            lib_cleanup; return
        fi
        back=$(grep -c 'reconnected to the server' "$p.client.log")
        if [ "$back" != "$k" ]; then
            report FAIL $name $((SECONDS - t0)) "kill $k: the client reconnected $back times ($p.client.log)"
            lib_cleanup; return
        fi
        # The guest's stall: the longest gap between two rounds around the
        # kill (the console may show the round before it a little late).
        stall=$(sed -n 's/.*IO-LOOP \([0-9]*\) ok at \([0-9.]*\) s.*/\1 \2/p' "$p.console" |
                awk -v r="$rounds" '$1 >= r - 1 && $1 <= r + 2 {
                        if (n++ && $2 - t > m) m = $2 - t; t = $2 }
                    END { printf "%.1f", m }')
        stalls="$stalls $stall"
        max_stall=$(awk -v a="$max_stall" -v b="${stall:-0}" 'BEGIN { print (b > a) ? b : a }')
        if [ -z "$stall" ] || awk -v s="$stall" -v m="$MAX_STALL" 'BEGIN { exit !(s >= m) }'; then
            report FAIL $name $((SECONDS - t0)) "kill $k: the guest stalled ${stall:-?} s, not under $MAX_STALL s; stalls:$stalls ($p.console)"
            lib_cleanup; return
        fi
        # Each kill its own outage: a server that dies within 5 s of a
        # restore is flapping, and the client backs off from it.
        [ "$k" = "$kills" ] || sleep 5
    done
    lib_cleanup
    report PASS $name $((SECONDS - t0)) "$kills kills, each restarted after 2 s: the client reconnected each time and the guest's loop went on without an I/O error or mismatch; stall per kill (s):$stalls (max $max_stall, limit $MAX_STALL)"
    rm -f "$p.disk"
}

tests=("$@")
# irq-msix-x10 and irq-intx-x10 take about 3 minutes each.
# nvme-reconnect and nvme-reconnect-secure take about 80 s each,
# gpio-migrate about 30 s.
[ ${#tests[@]} -gt 0 ] || tests=(nvme-fd nvme-secure gpio gpio-migrate server-killed server-killed-secure
                                 nvme-viommu nvme-viommu-fd irq-msix-x10 irq-intx-x10
                                 nvme-reconnect nvme-reconnect-secure)
for t in "${tests[@]}"; do
    case $t in
        nvme-fd) test_nvme nvme-fd off;;
        nvme-secure) test_nvme nvme-secure on;;
        gpio) test_gpio;;
        gpio-migrate) test_gpio_migrate;;
        server-killed) test_server_killed server-killed off;;
        server-killed-secure) test_server_killed server-killed-secure on;;
        nvme-viommu) test_nvme nvme-viommu on 1;;
        nvme-viommu-fd) test_nvme nvme-viommu-fd off 1;;
        irq-msix-x10) test_irq irq-msix-x10 msix 10;;
        irq-intx-x10) test_irq irq-intx-x10 intx 10;;
        nvme-reconnect) test_reconnect nvme-reconnect off "$RECONNECT_KILLS";;
        nvme-reconnect-secure) test_reconnect nvme-reconnect-secure on "$RECONNECT_KILLS";;
        *) report FAIL "$t" 0 "unknown test";;
    esac
done
echo "guest-tests: logs in $LOGDIR"
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
