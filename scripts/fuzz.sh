#!/usr/bin/env bash
# Build and run the libFuzzer harness for the vfio-user client's receive
# path (fuzz/vfio-user-fuzz.c; its header says what it does and why).
#
# Only our client files (hw/vfio-user/proxy.c, poll-window.c, version.c,
# device.c, dma.c, pci-vet.c) are
# compiled with clang, coverage and ASan/UBSan, with the include flags
# the QEMU build uses for them; the rest (util, qobject, qom, io) comes
# non-instrumented from the main gcc build, which must exist ("make qemu").
#
# Usage: fuzz.sh TOP [build|run|regress|repro FILE...|coverage] [libFuzzer args...]
#   build     compile the harness only
#   run       (default) build, then fuzz: FUZZ_SECONDS=N bounds the run
#             (default 600); FUZZ_JOBS=N runs N workers (default 1)
#   regress   build, then run every input of fuzz/corpus and fuzz/crashes
#             once: non-zero if any still crashes
#   repro     build, then run the given inputs once (VFIO_USER_FUZZ_VERBOSE=1
#             and VFIO_USER_FUZZ_TRACE=1 help)
#   coverage  line coverage of our files reached by the corpus (llvm-cov)
# The working corpus grows in build/fuzz/corpus (seeded from fuzz/corpus).
# A crash stops the run with a non-zero exit; its reproducer is saved in
# build/fuzz/crashes/ (FUZZ_ARTIFACTS=DIR to change): minimize it with
# "build/fuzz/vfio-user-fuzz -minimize_crash=1 -runs=2000 FILE" and keep it
# in fuzz/crashes/.
set -euo pipefail

top=$(cd "${1:?usage: fuzz.sh TOP [build|run|regress|repro FILE...]}" && pwd)
shift
mode=${1:-run}
[ $# -gt 0 ] && shift

qbuild=${QBUILD:-$top/build/qemu/build}
out=$top/build/fuzz
CLANG=${CLANG:-clang-14}
seconds=${FUZZ_SECONDS:-600}
artifacts=${FUZZ_ARTIFACTS:-$out/crashes}

die() { echo "fuzz: error: $*" >&2; exit 1; }

command -v "$CLANG" >/dev/null ||
    die "$CLANG not found: run scripts/install-deps.sh (clang-14, libclang-rt-14-dev)"
[ -f "$qbuild/compile_commands.json" ] && [ -f "$qbuild/libqemuutil.a" ] ||
    die "no QEMU build in $qbuild: run 'make' first"

mkdir -p "$out/corpus" "$artifacts"

# QEMU's include and define flags for hw/vfio-user/proxy.c, made absolute;
# gcc-only warnings and code generation flags are left out.
flags=$(python3 - "$qbuild/compile_commands.json" <<'EOF'
import json, os, shlex, sys
for e in json.load(open(sys.argv[1])):
    if e['file'].endswith('hw/vfio-user/proxy.c'):
        break
else:
    sys.exit('hw/vfio-user/proxy.c is not in compile_commands.json')
d = e['directory']
args = shlex.split(e['command'])
out, i = [], 0
while i < len(args):
    a = args[i]
    for opt in ('-iquote', '-isystem', '-I'):
        if a == opt or (a.startswith(opt) and opt != '-iquote'):
            p = args[i + 1] if a == opt else a[len(opt):]
            if a == opt:
                i += 1
            out += [opt, os.path.normpath(os.path.join(d, p))]
            break
    else:
        if a.startswith('-D') or a.startswith('-std=') or a in (
                '-m64', '-mcx16', '-msse2', '-fno-strict-aliasing',
                '-fno-common', '-fwrapv', '-pthread'):
            out.append(a)
    i += 1
print(shlex.join(out))
EOF
) || die "cannot read the compile flags of proxy.c"

# UBSan checks stay recoverable so that fuzz/ubsan.supp can list findings
# already reported; halt_on_error makes every other one fatal.
san="-fsanitize=address,undefined"
cflags="-g ${FUZZ_OPT:--O1} -fno-omit-frame-pointer -Wall -Wno-unused-function $san"
eval "set -- $flags -- $*"
qflags=()
while [ "$1" != -- ]; do qflags+=("$1"); shift; done
shift

# Our files, straight from the repository (-iquote TOP first: its
# headers win over whatever the tree's overlay links point at).
# The client's clock and blocking calls, renamed to fuzz/virtual-time.c's
# fuzz_* versions in our objects only: timeouts then fire in virtual time,
# as soon as nothing else can happen (that file says why).
vt_syms="g_get_monotonic_time clock_gettime poll epoll_wait
         qio_channel_readv_full qemu_cond_wait_func qemu_cond_timedwait_func
         qemu_cond_broadcast qemu_cond_signal qemu_thread_create
         qemu_thread_join"
redefs=()
for sym in $vt_syms; do redefs+=(--redefine-sym "$sym=fuzz_$sym"); done

# build NAME CFLAGS HARNESS_CFLAGS LDFLAGS: $out/NAME, objects in
# $out/obj-NAME.
build() {
    local name=$1 ccflags=$2 hflags=$3 ldflags=$4 objs=() src o lib
    local obj=$out/obj-$name

    mkdir -p "$obj"
    for src in proxy poll-window version device dma pci-vet migration; do
        o=$obj/$src.o
        "$CLANG" $ccflags -iquote "$top" "${qflags[@]}" \
            -c "$top/hw/vfio-user/$src.c" -o "$o" ||
            die "compiling hw/vfio-user/$src.c failed"
        objcopy "${redefs[@]}" "$o" || die "objcopy $o failed"
        objs+=("$o")
    done
    # The harness is not instrumented for coverage: its own branches are
    # not what we want the fuzzer to explore.
    for src in vfio-user-fuzz virtual-time pci-vet-fuzz; do
        "$CLANG" $hflags -iquote "$top" "${qflags[@]}" \
            -c "$top/fuzz/$src.c" -o "$obj/$src.o" ||
            die "compiling fuzz/$src.c failed"
    done

    # The main build's objects, as archives the linker picks from.
    for lib in io qom crypto authz event-loop-base; do
        rm -f "$obj/lib$lib.a"
        ar rcsT "$obj/lib$lib.a" "$qbuild"/lib$lib.a.p/*.o
    done
    "$CLANG" $ldflags -fsanitize=fuzzer -o "$out/$name.new" \
        "$obj/vfio-user-fuzz.o" "$obj/virtual-time.o" "$obj/pci-vet-fuzz.o" \
        "${objs[@]}" \
        -Wl,--start-group "$qbuild/libqemuutil.a" "$obj"/lib*.a \
        $(pkg-config --libs glib-2.0 gmodule-2.0) -lrt -lutil -lm -lz \
        -Wl,--end-group -pthread || die "linking the harness failed"
    mv "$out/$name.new" "$out/$name"
    echo "fuzz: built $out/$name"
}
build_fuzzer() {
    build vfio-user-fuzz "$cflags -fsanitize=fuzzer-no-link" "$cflags" "$san"
}

bin=$out/vfio-user-fuzz
common=(-max_len=8192 "-dict=$top/fuzz/vfio-user.dict" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
        "-artifact_prefix=$artifacts/")
# Symbolized stacks; fuzz/ubsan.supp matches function names, so without
# a symbolizer the known findings it lists would stop every run.
sym=/usr/lib/llvm-14/bin/llvm-symbolizer
[ -x "$sym" ] || die "$sym not found: run scripts/install-deps.sh (llvm-14)"
export ASAN_SYMBOLIZER_PATH=$sym
# Leak checks of each input: the client must free what it allocates.
# Slow unwinding on malloc (about a third slower): everything is allocated
# through glib, which has no frame pointers, and the fast unwinder stops
# there, leaving leaks without a culprit and fuzz/lsan.supp without a match.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=1:handle_abort=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/fuzz/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$top/fuzz/ubsan.supp}

case $mode in
build)
    build_fuzzer
    ;;
run)
    build_fuzzer
    jobs=${FUZZ_JOBS:-1}
    extra=()
    [ "$jobs" -gt 1 ] && extra=(-fork="$jobs" -ignore_crashes=0)
    echo "fuzz: running for ${seconds}s; corpus $out/corpus, reproducers in $artifacts"
    set +e
    "$bin" "${common[@]}" "${extra[@]}" -max_total_time="$seconds" "$@" \
        "$out/corpus" "$top/fuzz/corpus"
    rc=$?
    set -e
    if [ $rc -ne 0 ]; then
        echo "fuzz: FAILED (exit $rc): reproducer in $artifacts:" >&2
        ls -t "$artifacts" | head -n 3 >&2
        exit $rc
    fi
    echo "fuzz: no crash in ${seconds}s"
    ;;
regress)
    build_fuzzer
    inputs=("$top"/fuzz/corpus/* "$top"/fuzz/crashes/*)
    fail=0
    for f in "${inputs[@]}"; do
        [ -f "$f" ] || continue
        case ${f##*/} in README*) continue;; esac
        log=$out/regress-${f##*/}.log
        if "$bin" "${common[@]}" "$f" >"$log" 2>&1; then
            rm -f "$log"
            continue
        fi
        # LeakSanitizer failing to stop the process's threads (its own
        # fatal error, not a finding) says nothing of the input: retry once.
        if grep -q "LeakSanitizer has encountered a fatal error" "$log" &&
                "$bin" "${common[@]}" "$f" >"$log.retry" 2>&1; then
            echo "fuzz: $f: LeakSanitizer failed to run, passed on retry" \
                 "(first log: $log)" >&2
            rm -f "$log.retry"
            continue
        fi
        echo "fuzz: crashes: $f (log: $log)" >&2
        grep -v '^INFO:' "$log" | tail -n 25 >&2
        fail=1
    done
    [ $fail = 0 ] && echo "fuzz: ${#inputs[@]} inputs, no crash"
    exit $fail
    ;;
repro)
    build_fuzzer
    "$bin" "${common[@]}" "$@"
    ;;
coverage)
    # Line coverage of proxy.c, device.c, dma.c, pci-vet.c reached by the
    # corpus (build/fuzz/corpus and fuzz/corpus), with clang's source-based
    # coverage: report in build/fuzz/coverage.txt.
    build vfio-user-cov "-g -O0 -fprofile-instr-generate -fcoverage-mapping" \
        "-g -O1" "-fprofile-instr-generate"
    rm -rf "$out/profraw" && mkdir -p "$out/profraw"
    LLVM_PROFILE_FILE="$out/profraw/%p.profraw" "$out/vfio-user-cov" \
        -runs=0 -timeout=20 "$out/corpus" "$top/fuzz/corpus" \
        >"$out/coverage.log" 2>&1 || die "coverage run failed: $out/coverage.log"
    llvm-profdata-14 merge -o "$out/cov.profdata" "$out"/profraw/*.profraw
    llvm-cov-14 report "$out/vfio-user-cov" -instr-profile="$out/cov.profdata" \
        "$top"/hw/vfio-user/{proxy,device,dma,pci-vet}.c |
        tee "$out/coverage.txt"
    llvm-cov-14 show "$out/vfio-user-cov" -instr-profile="$out/cov.profdata" \
        "$top"/hw/vfio-user/{proxy,device,dma,pci-vet}.c \
        >"$out/coverage-lines.txt"
    echo "fuzz: per-line counts in $out/coverage-lines.txt"
    ;;
*)
    die "unknown mode '$mode'"
    ;;
esac
