#!/usr/bin/env bash
# Build and run the vfio-user-pci benchmarks (bench/vfio-user-bench.c)
# against the QEMU in build/qemu/build, then write a table, a CSV and a
# plot of throughput against transfer size.
#
# Usage: bench.sh REPO_TOP [--quick]      (or BENCH_QUICK=1)
#        bench.sh REPO_TOP --regen-boot   regenerate the boot sector header
#
# The benchmark is compiled here with the flags meson uses for
# tests/qtest/vfio-user-test (taken from compile_commands.json and
# build.ninja), so it needs no change to QEMU's meson.build.  Results go
# to build/bench/: results.txt, results.csv, throughput.dat,
# throughput.png.
set -euo pipefail
top=$(cd "$1" && pwd)
shift
tree=$top/build/qemu
qbuild=$tree/build
out=$top/build/bench
obj=$out/obj
src=$top/bench

quick=${BENCH_QUICK:-0}
[ "$quick" = 0 ] && quick=
regen=
for a in "$@"; do
    case $a in
        --quick) quick=1 ;;
        --regen-boot) regen=1 ;;
        *) echo "bench: unknown argument $a" >&2; exit 2 ;;
    esac
done

die() { echo "bench: error: $*" >&2; exit 1; }

# The boot sector: assembled by binutils, kept as a C array.
regen_boot() {
    local tmp
    tmp=$(mktemp -d)
    as --32 -o "$tmp/boot.o" "$src/vfio-user-bench-boot.S"
    ld -m elf_i386 -Ttext=0x7c00 --oformat binary -o "$tmp/boot.bin" \
        "$tmp/boot.o"
    [ "$(stat -c %s "$tmp/boot.bin")" = 512 ] || die "boot sector is not 512 bytes"
    {
        echo "/* SPDX-License-Identifier: GPL-2.0-or-later */"
        echo "/* Generated from vfio-user-bench-boot.S by scripts/bench.sh --regen-boot */"
        echo "#define VFIO_USER_BENCH_BOOT_PARAMS 0x1e0"
        echo "static const unsigned char vfio_user_bench_boot[512] = {"
        od -An -v -tx1 -w8 "$tmp/boot.bin" | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1, /g; s/^/    /; s/ *$//'
        echo "};"
    } > "$src/vfio-user-bench-boot.h"
    rm -rf "$tmp"
    echo "bench: regenerated bench/vfio-user-bench-boot.h"
}
if [ -n "$regen" ]; then
    regen_boot
    exit 0
fi

[ -x "$qbuild/qemu-system-x86_64" ] || die "no QEMU build: run make first"
[ -f "$qbuild/compile_commands.json" ] || die "no compile_commands.json in $qbuild"
mkdir -p "$obj"

# Compile flags of vfio-user-test, minus its output options.
cflags=$(/usr/bin/python3 - "$qbuild" <<'EOF'
import json, shlex, sys
cc = json.load(open(sys.argv[1] + '/compile_commands.json'))
for c in cc:
    if c['file'].endswith('tests/qtest/vfio-user-test.c'):
        a = shlex.split(c['command'])
        while a and not a[0].startswith('-'):
            a.pop(0)
        out = []
        skip = False
        for x in a:
            if skip:
                skip = False
                continue
            if x in ('-o', '-MQ', '-MF', '-c'):
                skip = True
                continue
            if x in ('-MD', '-Werror') or x.endswith('.c'):
                continue
            out.append(x)
        print(' '.join(shlex.quote(x) for x in out))
        break
else:
    sys.exit('vfio-user-test not in compile_commands.json')
EOF
)
# The compiler: the words before the first option ("ccache cc").
cc=$(/usr/bin/python3 - "$qbuild" <<'EOF'
import itertools, json, shlex, sys
cc = json.load(open(sys.argv[1] + '/compile_commands.json'))
a = next(shlex.split(c['command']) for c in cc
         if c['file'].endswith('tests/qtest/vfio-user-test.c'))
print(' '.join(itertools.takewhile(lambda x: not x.startswith('-'), a)))
EOF
)
# Objects and libraries vfio-user-test links, minus its own test cases:
# the test server and the fixture come built by meson.
linkobjs=$(awk '/^build tests\/qtest\/vfio-user-test: c_LINKER/ {
        sub(/^build tests\/qtest\/vfio-user-test: c_LINKER /, "");
        sub(/ \|.*/, "");
        n = split($0, f, " ");
        for (i = 1; i <= n; i++)
            if (f[i] !~ /vfio-user-test\.p\/vfio-user-test\.c\.o$/)
                printf "%s ", f[i];
        exit }' "$qbuild/build.ninja")
[ -n "$linkobjs" ] || die "cannot find the link line of vfio-user-test in build.ninja"

# Make sure those objects are built.
ninja -C "$qbuild" tests/qtest/vfio-user-test >/dev/null

compile() {     # src obj
    if [ ! -f "$2" ] || [ "$1" -nt "$2" ] || \
       [ "$top/tests/qtest/vfio-user-server.h" -nt "$2" ] || \
       [ "$top/tests/qtest/vfio-user-fixture.h" -nt "$2" ] || \
       [ "$src/vfio-user-bench-boot.h" -nt "$2" ]; then
        (cd "$qbuild" && eval "$cc $cflags -c $1 -o $2")
    fi
}
compile "$src/vfio-user-bench.c" "$obj/vfio-user-bench.o"
(cd "$qbuild" && eval "$cc -o $obj/vfio-user-bench $obj/vfio-user-bench.o \
    $linkobjs -Wl,--as-needed -pie \
    -Wl,--start-group libqemuutil.a -lrt -lm -pthread \
    $(pkg-config --libs glib-2.0) -Wl,--end-group")

export QTEST_QEMU_BINARY=$qbuild/qemu-system-x86_64
export QTEST_QEMU_IMG=$qbuild/qemu-img
args=(--csv "$out/results.csv" --plot-data "$out/throughput.dat")
[ -n "$quick" ] && args+=(--quick)
echo "bench: running $obj/vfio-user-bench ${args[*]}"
"$obj/vfio-user-bench" "${args[@]}" | tee "$out/results.txt"

if command -v gnuplot >/dev/null; then
    gnuplot <<EOF
set terminal pngcairo size 900,640 noenhanced
set output "$out/throughput.png"
set title "vfio-user-pci DMA throughput vs transfer size\n(medians over rounds; dashed/dotted: limits measured in the same run)"
set xlabel "transfer size (bytes)"
set ylabel "MiB/s"
set logscale xy 2
set format x "%.0b%B"
set key outside below
set grid
plot "$out/throughput.dat" using 1:2 with linespoints lw 2 title "secure-dma DMA_READ", \
     "" using 1:3 with linespoints lw 2 title "secure-dma DMA_WRITE", \
     "" using 1:4 with lines dt 2 title "raw stream, READ shape", \
     "" using 1:5 with lines dt 2 title "raw stream, WRITE shape", \
     "" using 1:6 with linespoints title "fd-mapped, from guest", \
     "" using 1:7 with linespoints title "fd-mapped, to guest", \
     "" using 1:8 with lines dt 3 lw 2 title "memcpy"
EOF
    echo "bench: plot in $out/throughput.png"
else
    echo "bench: gnuplot missing (scripts/install-deps.sh installs gnuplot-nox): no plot"
fi
# The guest's view: NVMe from QEMU's own server in three modes; its rows
# are appended to results.txt and results.csv.
"$top/scripts/bench-guest.sh" "$top" --append ${quick:+--quick}
echo "bench: table in $out/results.txt, CSV in $out/results.csv"
