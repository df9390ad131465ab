#!/usr/bin/env bash
# The guest's view, for make bench: a Linux guest under TCG (scripts/
# build-guest.sh, demo=load) runs vfio-user-load (bench/guest/
# vfio-user-load.c: fio's knobs, Linux native AIO, O_DIRECT) on the NVMe
# namespace of QEMU's own vfio-user server (x-vfio-user-server, make
# server), with the client in three modes:
#
#   fd       guest RAM a shared memfd whose fd goes with each DMA_MAP: the
#            server DMAs through its own mapping.  The limit.
#   secure   secure-dma=on: no fd, every DMA is a DMA_READ/WRITE message
#   viommu   secure-dma=on behind intel-iommu (q35, caching-mode=on, guest
#            intel_iommu=on): DMA_MAP/UNMAP follow the guest's IOMMU maps
#
# and, in one boot per mode, the workloads of issue 13: sequential 1 MiB
# write and read at queue depth 1 and 4 (MiB/s), 4 KiB random write and
# read at queue depth 32 (IOPS).  Each round boots every mode once, in
# turn, so that a change in the machine's load hits all modes alike.
# Rows: medians over rounds, [min..max]; the ratio is the median of the
# per-round ratios: secure against fd, viommu against secure.
#
# Usage: bench-guest.sh TOP [--quick] [--append]
#        bench-guest.sh TOP --profile [MODE [RW:BS:QD [SECONDS]]]
#   --quick    one round, short jobs (make check): proves every row is
#              measured, checks no figure
#   --append   also append the table and CSV rows to build/bench/
#              results.txt and results.csv (scripts/bench.sh)
#   --profile  perf record -g both the client and the server for SECONDS
#              (default 10) while the guest runs one workload (default
#              secure randread:4K:32), then count the DMA requests per
#              guest I/O in a second, traced run; build/bench/profile/
#              MODE-RW-BS-QD/
# Environment: BENCH_QUICK=1 (--quick); BENCH_NVME_ROUNDS, else
# BENCH_ROUNDS (default 3, quick 1); BENCH_NVME_RUNTIME, each job's
# runtime (default 5, quick 300ms); BENCH_NVME_TIMEOUT, seconds a guest
# boot may take (default 120 plus 3 times the jobs' runtime); BENCH_ONLY
# (the rows are "not run" unless it names nvme).
# Results: build/bench/nvme.txt, build/bench/nvme.csv; logs in
# build/bench/nvme/.  Exit status 1 if a row was not measured.
set -uo pipefail

TOP=$(realpath -e "${1:-$(dirname "$0")/..}")
shift || true
OUT=$TOP/build/bench
LOGDIR=$OUT/nvme

quick=${BENCH_QUICK:-0}
[ "$quick" = 0 ] && quick=
append='' profile=''
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1;;
        --append) append=1;;
        --profile) profile=1; shift; break;;
        *) echo "bench-guest: unknown argument $1" >&2; exit 2;;
    esac
    shift
done

die() { echo "bench-guest: error: $*" >&2; exit 1; }
say() { echo "bench-guest: $*" >&2; }

# shellcheck source=guest-lib.sh
. "$TOP/scripts/guest-lib.sh"
trap lib_cleanup EXIT
mkdir -p "$LOGDIR"

MODES=(fd secure viommu)
# RW:BS:IODEPTH, in the order the guest runs them: writes first, so that
# the reads find data the guest wrote.
WORKLOADS=(write:1M:1 write:1M:4 read:1M:1 read:1M:4 randwrite:4K:32 randread:4K:32)
if [ -n "$quick" ]; then
    rounds=${BENCH_NVME_ROUNDS:-1} runtime=${BENCH_NVME_RUNTIME:-300ms} region=16
else
    rounds=${BENCH_NVME_ROUNDS:-${BENCH_ROUNDS:-3}} runtime=${BENCH_NVME_RUNTIME:-5} region=128
fi
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "BENCH_NVME_ROUNDS must be a positive number"
# A boot under TCG takes 10-20 s on the 2-core machine; allow 3 times the
# jobs' runtime on top (a job ends at its runtime, then drains its queue).
runtime_s=$(awk -v t="$runtime" 'BEGIN { v = t + 0;
    if (t ~ /ms$/) v /= 1000; else if (t ~ /m$/) v *= 60; print int(v + 1) }')
BOOT_TIMEOUT=${BENCH_NVME_TIMEOUT:-$((120 + 3 * ${#WORKLOADS[@]} * runtime_s))}

mode_args() {   # MODE -> "SECURE VIOMMU"
    case $1 in fd) echo "off 0";; secure) echo "on 0";; viommu) echo "on 1";; esac
}

# The server's disk: random data, so that every read returns data that
# were written (a hole would read as zeros without touching the file).
DISK=$LOGDIR/disk.raw
make_disk() {
    if [ "$(stat -c %s "$DISK" 2>/dev/null)" != $((region * 1048576)) ]; then
        head -c $((region * 1048576)) /dev/urandom >"$DISK" ||
            die "cannot write $DISK"
    fi
}

# boot_load MODE PREFIX WORKLOADS RUNTIME [QEMU OPTION...]: a server and a
# guest that runs WORKLOADS (RW:BS:QD,...) for RUNTIME each; the console
# in PREFIX.console.  Sets WHY to the reason when the guest gave no result
# or a failed one.  Leaves the processes running when HOLD is set (for
# --profile); the caller then waits.
boot_load() {
    local mode=$1 p=$2 load=$3 rt=$4 secure viommu res
    shift 4
    WHY=
    read -r secure viommu < <(mode_args "$mode")
    rm -f "$p".*
    if ! start_nvme_server "$p.sock" "$DISK" "$p.server.log" 2>/dev/null; then
        WHY="server did not start ($p.server.log)"
        lib_cleanup; return 1
    fi
    guest_args "$p.sock" "$secure" "$viommu" \
        "demo=load load=$load runtime=$rt size=$region"
    GUEST_ARGS+=("$@")
    start_client "$p"
    [ -n "${HOLD:-}" ] && return 0
    if ! wait_exit "$CLIENT_PID" "$BOOT_TIMEOUT"; then
        res=$(guest_result "$p.console")
        WHY="guest did not finish in $BOOT_TIMEOUT s${res:+, $res} ($p.console)"
    fi
    lib_cleanup
    res=$(guest_result "$p.console")
    case "$res" in
        "load PASS"*) ;;
        *) [ -n "$WHY" ] || WHY="${res:-no result} ($p.console)";;
    esac
    [ -z "$WHY" ]
}

# load_field CONSOLE JOB KEY: KEY= of JOB's "vfio-user-load:" line
load_field() {
    sed -n "s/.*vfio-user-load: name=$2 .* $3=\([^ ]*\).*/\1/p" "$1" | tail -n 1
}

job_name() {   # RW:BS:QD -> the job name the guest gives it
    local w=$1
    echo "${w%%:*}-$(cut -d: -f2 <<<"$w")-qd${w##*:}"
}

if [ -n "$profile" ]; then
    mode=${1:-secure} work=${2:-randread:4K:32} secs=${3:-10}
    pdir=$OUT/profile/$mode-${work//:/-}
    mkdir -p "$pdir"
    command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"
    [ -x "$SERVER_QEMU" ] || die "no $SERVER_QEMU: run make server"
    "$TOP/scripts/build-guest.sh" "$GUEST" >"$LOGDIR/build-guest.log" 2>&1 ||
        die "build-guest.sh failed ($LOGDIR/build-guest.log)"
    make_disk
    # 1. perf on both processes, in the middle of a long job.
    HOLD=1 boot_load "$mode" "$pdir/perf" "$work" $((secs + 20)) ||
        die "$WHY"
    wait_console "$pdir/perf.console" 'Starting job' 120 "$CLIENT_PID" ||
        die "the guest did not start its job ($pdir/perf.console)"
    sleep 3
    say "perf record -g on client $CLIENT_PID and server $SERVER_PID for $secs s"
    perf record -e cpu-clock -F 997 -g -p "$CLIENT_PID" -o "$pdir/client.perf.data" \
        -- sleep "$secs" >"$pdir/client.perf.log" 2>&1 &
    ppid1=$!
    perf record -e cpu-clock -F 997 -g -p "$SERVER_PID" -o "$pdir/server.perf.data" \
        -- sleep "$secs" >"$pdir/server.perf.log" 2>&1 &
    ppid2=$!
    wait "$ppid1" "$ppid2"
    wait_exit "$CLIENT_PID" $((secs + 60)) || say "guest did not power off"
    lib_cleanup
    grep 'vfio-user-load: name' "$pdir/perf.console"
    for w in client server; do
        perf report -i "$pdir/$w.perf.data" --stdio --no-children \
            --sort dso,sym -g none --percent-limit 0.5 \
            >"$pdir/$w.flat.txt" 2>/dev/null
        perf report -i "$pdir/$w.perf.data" --stdio --no-children \
            --sort comm,dso -g none >"$pdir/$w.by-thread.txt" 2>/dev/null
        perf report -i "$pdir/$w.perf.data" --stdio --children \
            --sort sym -g caller,0.5,callee --percent-limit 2 \
            >"$pdir/$w.graph.txt" 2>/dev/null
        perf script -i "$pdir/$w.perf.data" -F tid,ip,sym 2>/dev/null |
            awk -f "$TOP/scripts/perf-by-syscall.awk" >"$pdir/$w.by-syscall.txt"
        echo "== $w (pid $([ $w = client ] && echo "$CLIENT_PID" || echo "$SERVER_PID")): $pdir/$w.by-syscall.txt"
        head -n 25 "$pdir/$w.by-syscall.txt"
    done
    # 2. What each guest I/O costs in messages: the client's trace of the
    #    DMA requests it served, against the I/Os the guest completed.
    #    Tracing slows the run; the counts per I/O do not depend on it.
    boot_load "$mode" "$pdir/count" "$work" 3 \
        -trace "enable=vfio_user_dma*,file=$pdir/count.trace" || die "$WHY"
    read -r rd rb wr wb ref maps mapsfd _ < <(dma_counts "$pdir/count.trace")
    ios=$(load_field "$pdir/count.console" "$(job_name "$work")" ios)
    unmaps=$(grep -c '^vfio_user_dma_unmap ' "$pdir/count.trace")
    {
        echo "mode $mode, workload $work: $ios guest I/Os"
        echo "DMA_READ $rd ($rb bytes), DMA_WRITE $wr ($wb bytes), refused $ref, DMA_MAP $maps ($mapsfd with fd), DMA_UNMAP $unmaps"
        awk -v i="$ios" -v r="$rd" -v rb="$rb" -v w="$wr" -v wb="$wb" \
            -v m="$maps" -v u="$unmaps" 'BEGIN { if (i > 0)
            printf "per guest I/O: %.2f DMA_READ (%.0f bytes each), %.2f DMA_WRITE (%.0f bytes each), %.2f DMA_MAP, %.2f DMA_UNMAP\n",
                r / i, r ? rb / r : 0, w / i, w ? wb / w : 0, m / i, u / i }'
        # The sizes asked for, most frequent first.
        echo "requests by command and size (cmd 11 DMA_READ, 12 DMA_WRITE):"
        awk '$1 == "vfio_user_dma" { c = s = ""
                for (i = 2; i <= NF; i++) {
                    if ($i == "cmd") c = $(i + 1)
                    if ($i == "count") s = $(i + 1)
                }
                n[c " " s]++ }
             END { for (k in n) print n[k], "cmd", k }' "$pdir/count.trace" |
            sort -rn | head -n 8 | sed 's/^/  /'
    } | tee "$pdir/dma-counts.txt"
    exit 0
fi

# ---------------------------------------------------------------------
# The rows.

# VAL[mode,job,round]: the figure; FAILED[mode]: why a mode has none.
declare -A VAL FAILED
wanted=1
if [ -n "${BENCH_ONLY:-}" ] && [[ ",$BENCH_ONLY," != *,nvme,* ]]; then
    wanted=
fi

t_start=$SECONDS
if [ -n "$wanted" ]; then
    if [ ! -x "$SERVER_QEMU" ]; then
        for m in "${MODES[@]}"; do FAILED[$m]="no $SERVER_QEMU (make server)"; done
    elif ! "$TOP/scripts/build-guest.sh" "$GUEST" >"$LOGDIR/build-guest.log" 2>&1; then
        for m in "${MODES[@]}"; do FAILED[$m]="build-guest.sh failed ($LOGDIR/build-guest.log)"; done
    else
        make_disk
        load=$(IFS=,; echo "${WORKLOADS[*]}")
        for ((r = 1; r <= rounds; r++)); do
            for m in "${MODES[@]}"; do
                [ -z "${FAILED[$m]:-}" ] || continue
                t0=$SECONDS
                if ! boot_load "$m" "$LOGDIR/$m.$r" "$load" "$runtime"; then
                    FAILED[$m]="round $r: $WHY"
                    say "$m, round $r: $WHY"
                    continue
                fi
                for w in "${WORKLOADS[@]}"; do
                    j=$(job_name "$w")
                    case $w in
                        rand*) v=$(load_field "$LOGDIR/$m.$r.console" "$j" iops);;
                        *) v=$(load_field "$LOGDIR/$m.$r.console" "$j" mibps);;
                    esac
                    # A job that completed no I/O in its runtime measured
                    # nothing.
                    if [ -z "$v" ] || ! awk -v v="$v" 'BEGIN { exit !(v > 0) }'; then
                        FAILED[$m]="round $r: job $j reported ${v:-nothing} ($LOGDIR/$m.$r.console)"
                        break
                    fi
                    VAL[$m,$j,$r]=$v
                done
                say "$m, round $r: $((SECONDS - t0)) s"
            done
        done
    fi
fi
elapsed=$((SECONDS - t_start))

# The table, in the format of bench/vfio-user-bench.c's rows.
num() { awk -v v="$1" 'BEGIN { printf(v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v) }'; }
# stats V...: "MEDIAN MIN MAX" (the median of an even count: the mean of
# the middle two)
stats() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
        m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        print m, a[1], a[NR] }'
}
series() {   # MODE JOB: the figures of all rounds, or nothing
    local r out=()
    [ -z "${FAILED[$1]:-}" ] || return 0
    for ((r = 1; r <= rounds; r++)); do out+=("${VAL[$1,$2,$r]}"); done
    echo "${out[@]}"
}
ratios() {   # MODE LIMIT_MODE JOB: the per-round ratios
    local r out=()
    for ((r = 1; r <= rounds; r++)); do
        out+=("$(awk -v a="${VAL[$1,$3,$r]}" -v b="${VAL[$2,$3,$r]}" 'BEGIN { printf "%.6g", a / b }')")
    done
    echo "${out[@]}"
}

TXT=$OUT/nvme.txt
CSV=$OUT/nvme.csv
unmeasured=0
{
    echo
    echo "# NVMe as the guest sees it: QEMU's x-vfio-user-server, Linux guest under TCG, vfio-user-load"
    echo "# (bench/guest/vfio-user-load.c: O_DIRECT, Linux AIO) on /dev/nvme0n1, ${region} MiB region, runtime=$runtime per job;"
    echo "# $rounds round(s), each one guest boot per mode; fd: memfd RAM, fds sent (the limit);"
    echo "# secure-dma: secure-dma=on, plain RAM; vIOMMU: secure-dma=on behind intel-iommu"
    printf '\n%-32s %-5s %30s  %-30s %22s %7s\n' benchmark size "median [min..max]" \
        limit "median [min..max]" ratio
} >"$TXT"
echo "benchmark,size,unit,median,min,max,limit,limit_median,limit_min,limit_max,ratio,higher_is_better,note" >"$CSV"

# row NAME SIZE UNIT MODE LIMIT_MODE LIMIT_NAME JOB NOTE.  The names hold
# commas: quoted in the CSV.
row() {
    local name=$1 size=$2 unit=$3 mode=$4 lmode=$5 lname=$6 job=$7 note=$8
    local why='' v l med lo hi lmed llo lhi rat
    if [ -z "$wanted" ]; then
        printf '%-32s %-5s %30s  %-30s %22s %7s\n    not run: BENCH_ONLY\n' \
            "$name" "$size" - "$lname" - - >>"$TXT"
        echo "\"$name\",$size,,,,,\"$lname\",,,,,,\"not run: BENCH_ONLY\"" >>"$CSV"
        return
    fi
    v=$(series "$mode" "$job")
    [ -n "$v" ] || why="${FAILED[$mode]}"
    if [ -z "$why" ] && [ -n "$lmode" ]; then
        l=$(series "$lmode" "$job")
        [ -n "$l" ] || why="limit not measured: ${FAILED[$lmode]}"
    fi
    if [ -n "$why" ]; then
        unmeasured=$((unmeasured + 1))
        printf '%-32s %-5s %30s  %-30s %22s %7s\n    not measured: %s\n' \
            "$name" "$size" - "$lname" - - "$why" >>"$TXT"
        echo "\"$name\",$size,,,,,\"$lname\",,,,,,\"not measured: ${why//\"/\'}\"" >>"$CSV"
        return
    fi
    # shellcheck disable=SC2086
    read -r med lo hi < <(stats $v)
    if [ -z "$lmode" ]; then
        printf '%-32s %-5s %30s  %-30s %22s %7s\n' "$name" "$size" \
            "$(num "$med") [$(num "$lo")..$(num "$hi")] $unit" "$lname" - - >>"$TXT"
        echo "\"$name\",$size,$unit,$med,$lo,$hi,,,,,,1,\"$note\"" >>"$CSV"
    else
        # shellcheck disable=SC2086
        read -r lmed llo lhi < <(stats $l)
        # shellcheck disable=SC2046
        read -r rat _ < <(stats $(ratios "$mode" "$lmode" "$job"))
        printf '%-32s %-5s %30s  %-30s %22s %6.2fx\n' "$name" "$size" \
            "$(num "$med") [$(num "$lo")..$(num "$hi")] $unit" "$lname" \
            "$(num "$lmed") [$(num "$llo")..$(num "$lhi")]" "$rat" >>"$TXT"
        echo "\"$name\",$size,$unit,$med,$lo,$hi,\"$lname\",$lmed,$llo,$lhi,$rat,1,\"$note\"" >>"$CSV"
    fi
    [ -z "$note" ] || echo "    $note" >>"$TXT"
}

for w in "${WORKLOADS[@]}"; do
    j=$(job_name "$w") rw=${w%%:*} qd=${w##*:} bs=$(cut -d: -f2 <<<"$w")
    case $rw in
        rand*) unit=IOPS label="NVMe $rw qd$qd";;
        *) unit=MiB/s label="NVMe seq $rw qd$qd";;
    esac
    row "$label, fd" "$bs" "$unit" fd "" "(the limit of the rows below)" "$j" \
        "memfd RAM, fds sent: the server DMAs through its mapping"
    row "$label, secure-dma" "$bs" "$unit" secure fd "fd mode, same workload" "$j" ""
    row "$label, vIOMMU" "$bs" "$unit" viommu secure "secure-dma, no vIOMMU" "$j" \
        "secure-dma=on behind intel-iommu"
done
[ -z "$wanted" ] || echo "# guest part: $elapsed s" >>"$TXT"
[ "$unmeasured" = 0 ] ||
    echo "bench: FAIL: $unmeasured NVMe rows not measured (reasons above)" >>"$TXT"

cat "$TXT"
if [ -n "$append" ]; then
    cat "$TXT" >>"$OUT/results.txt"
    tail -n +2 "$CSV" >>"$OUT/results.csv"
fi
[ "$unmeasured" = 0 ]
