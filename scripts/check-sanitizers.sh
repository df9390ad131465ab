#!/usr/bin/env bash
# The vfio-user qtests under AddressSanitizer and UndefinedBehaviorSanitizer:
# a third build of the same tree (build/qemu/build-asan, configured with the
# main flags plus --enable-asan --enable-ubsan) runs the client and the
# qtests with both sanitizers; any sanitizer report fails.
#
# Usage: check-sanitizers.sh REPO_TOP     (make check-sanitizers)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
top=$1
tree=$top/build/qemu
abuild=$tree/build-asan
log=$top/build/check-logs/sanitizers
mkdir -p "$log"

if [ ! -f "$abuild/build.ninja" ]; then
    configure_qemu check-sanitizers "$tree" "$abuild" "$log/configure.log" \
        --enable-asan --enable-ubsan || exit 1
fi
"$top/scripts/link-firmware.sh" "$VFIO_USER_CACHE" "$abuild"

mapfile -t qtests < <(our_qtests)
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
passed=0 failed=0 skipped=0 cases=0
for t in "${qtests[@]}"; do
    (cd "$abuild" && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
        timeout 1200 "tests/qtest/$t" --tap -k) >"$log/$t.log" 2>&1
    rc=$?
    # A binary that ran no case proves nothing under the sanitizers: a
    # skipped case is counted and named, and none run at all is a failure.
    ok=$(grep '^ok ' "$log/$t.log" | grep -vc '# SKIP')
    skip=$(grep '^ok ' "$log/$t.log" | grep -c '# SKIP')
    skipped=$((skipped + skip))
    cases=$((cases + ok))
    grep '^ok .*# SKIP' "$log/$t.log" | sed "s/^/skipped: $t: /"
    if [ "$rc" = 0 ] && [ "$ok" -gt 0 ] && ! grep -q '^not ok' "$log/$t.log" &&
       ! grep -qE 'runtime error:|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer' \
           "$log/$t.log"; then
        passed=$((passed + 1))
        echo "PASS: $t under ASan+UBSan ($ok cases, $skip skipped)"
    else
        failed=$((failed + 1))
        grep -E 'runtime error:|AddressSanitizer|^not ok' "$log/$t.log" | head -n 10
        echo "FAIL: $t under ASan+UBSan (exit $rc, $ok cases run, see $log/$t.log)"
    fi
done
if [ "$cases" = 0 ]; then
    failed=$((failed + 1))
    echo "FAIL: no qtest case ran under ASan+UBSan"
fi
echo "$passed passed, $failed failed, $skipped skipped ($cases cases run)"
[ "$failed" = 0 ]
