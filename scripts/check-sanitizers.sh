#!/usr/bin/env bash
# The vfio-user qtests under AddressSanitizer and UndefinedBehaviorSanitizer:
# a third build of the same tree (build/qemu/build-asan, configured with the
# main flags plus --enable-asan --enable-ubsan) runs the client and the
# qtests with both sanitizers; any sanitizer report fails.
#
# Usage: check-sanitizers.sh REPO_TOP     (make check-sanitizers)
set -uo pipefail
top=$1
tree=$top/build/qemu
abuild=$tree/build-asan
log=$top/build/check-logs/sanitizers
: "${CONFIGURE_FLAGS:?CONFIGURE_FLAGS not set (run through make)}"
mkdir -p "$log"

if [ ! -f "$abuild/build.ninja" ]; then
    mkdir -p "$abuild"
    (cd "$abuild" && eval "'$tree/configure' $CONFIGURE_FLAGS \
        --enable-asan --enable-ubsan") >"$log/configure.log" 2>&1 || {
        tail -n 20 "$log/configure.log"
        echo "check-sanitizers: configure failed: see $log/configure.log"
        exit 1
    }
fi
"$top/scripts/link-firmware.sh" "${CACHE:-$HOME/.cache/vfio-user-client}" "$abuild"

mapfile -t qtests < <(grep -v '^#' "$top/scripts/qtests.txt" | sed '/^$/d')
targets=(qemu-system-x86_64)
for t in "${qtests[@]}"; do targets+=("tests/qtest/$t"); done
ninja -C "$abuild" "${targets[@]}" >"$log/build.log" 2>&1 || {
    tail -n 30 "$log/build.log"
    echo "check-sanitizers: build failed: see $log/build.log"
    exit 1
}

# QEMU leaks a little at exit by design: leaks are not what we look for.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export VFIO_USER_SAMPLES="$top/build/libvfio-user/samples"
passed=0 failed=0
for t in "${qtests[@]}"; do
    (cd "$abuild" && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
        timeout 1200 "tests/qtest/$t" --tap -k) >"$log/$t.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ] && ! grep -q '^not ok' "$log/$t.log" &&
       ! grep -qE 'runtime error:|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer' \
           "$log/$t.log"; then
        passed=$((passed + 1))
        echo "PASS: $t under ASan+UBSan"
    else
        failed=$((failed + 1))
        grep -E 'runtime error:|AddressSanitizer|^not ok' "$log/$t.log" | head -n 10
        echo "FAIL: $t under ASan+UBSan (exit $rc, see $log/$t.log)"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
