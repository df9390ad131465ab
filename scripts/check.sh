#!/usr/bin/env bash
# make check: the project's test command.
#
#  1. checkpatch on every patch of the three series (make patchset
#     output: the client, the server fixes, the device model fixes);
#  2. the qtests we own (the interop one twice: against libvfio-user from
#     the tree our series patches, and as the tarball ships it), plus
#     QEMU's device-introspect-test for x86_64, and QEMU's unit test of the
#     string input visitor, which a patch of ours extends.  The introspect
#     test only introspects device types and their properties, vfio-pci
#     among them: it realizes no device.  Nothing here reaches kernel vfio-pci's realize, region,
#     config space, interrupt or DMA paths, which our hw/vfio patches
#     rework; these machines have no VFIO device (README.rst says so);
#     then the guest tests and a quick pass of make bench, which fails if
#     it measured nothing for a row;
#  3. each emitted series applies with git am to a fresh unpack of the
#     pristine tarball on its own; the three in order give the tree we
#     built, and that tree builds.  (make check-series, not run here,
#     builds every prefix of the client series.)
#
# Ends with "N passed, N failed, N skipped"; every skip (a qtest case, or a
# step left out with SKIP_GUEST_TESTS=1 or SKIP_PATCHSET_BUILD=1) is counted
# there and named above it.  Usage: check.sh REPO_TOP
set -uo pipefail
. "$(dirname "$0")/lib.sh"
top=$1
build=$top/build
tree=$build/qemu
qbuild=$tree/build
cache=$VFIO_USER_CACHE
log=$build/check-logs
rm -rf "$log"
mkdir -p "$log"

passed=0 failed=0 skipped=0
failures=()
pass() { passed=$((passed + 1)); echo "PASS: $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL: $1${2:+ ($2)}"; }
# A step the caller chose not to run: counted, and named in the summary,
# so that a green run with skips never reads as a full one.
skips=()
skip() { skipped=$((skipped + 1)); skips+=("$1"); echo "SKIP: $1"; }

# --- 1. the series, and checkpatch on each patch -------------------------
if make -s -C "$top" patchset >"$log/patchset.log" 2>&1; then
    pass "make patchset"
else
    fail "make patchset" "see $log/patchset.log"
fi
# Three series (1-client, 2-server, 3-models); the cover letters are prose.
for p in "$build"/patchset/*/*.patch; do
    [ -e "$p" ] || continue
    [ "$(basename "$p")" != 0000-cover-letter.patch ] || continue
    name=$(basename "$(dirname "$p")")/$(basename "$p")
    if (cd "$tree" && perl scripts/checkpatch.pl --terse "$p") \
            >"$log/checkpatch-${name//\//-}.log" 2>&1; then
        pass "checkpatch $name"
    else
        fail "checkpatch $name" "$(grep -c ERROR "$log/checkpatch-${name//\//-}.log") errors, see $log/checkpatch-${name//\//-}.log"
    fi
done

# --- 2. qtests -------------------------------------------------------------
# Tests we own are listed in scripts/qtests.txt (one binary
# name per line); device-introspect-test is QEMU's (see the top: it is no
# test of kernel vfio-pci).
qtests=(device-introspect-test)
mapfile -t -O 1 qtests < <(our_qtests)
targets=()
for t in "${qtests[@]}"; do targets+=("tests/qtest/$t"); done
if ! ninja -C "$qbuild" "${targets[@]}" >"$log/qtest-build.log" 2>&1; then
    tail -n 40 "$log/qtest-build.log"
    fail "build qtests" "see $log/qtest-build.log"
else
    # run_qtest NAME LOGNAME LABEL: one qtest binary, one PASS/FAIL line
    run_qtest() {
        local t=$1 tlog=$log/qtest-$2.log label=$3 rc ok nok skip
        (cd "$qbuild" &&
         QTEST_QEMU_BINARY=./qemu-system-x86_64 \
         QTEST_QEMU_IMG=./qemu-img \
         G_TEST_DBUS_DAEMON="$tree/tests/dbus-vmstate-daemon.sh" \
         timeout 900 "tests/qtest/$t" --tap -k) >"$tlog" 2>&1
        rc=$?
        ok=$(grep '^ok ' "$tlog" | grep -vc '# SKIP')
        nok=$(grep -c '^not ok ' "$tlog")
        skip=$(grep '^ok ' "$tlog" | grep -c '# SKIP')
        skipped=$((skipped + skip))
        if [ "$rc" = 0 ] && [ "$nok" = 0 ] && [ "$ok" -gt 0 ]; then
            pass "qtest $label ($ok cases, $skip skipped)"
        else
            grep '^not ok' "$tlog" | head -n 20
            fail "qtest $label" "exit $rc, $ok ok, $nok not ok, see $tlog"
        fi
    }
    # The interop peers (make libvfio-user): libvfio-user from the tree
    # our series patches.
    export VFIO_USER_SAMPLES="$build/libvfio-user/samples"
    for t in "${qtests[@]}"; do
        run_qtest "$t" "$t" "$t"
    done
    # The interop cases again against libvfio-user as the tarball ships
    # it (make libvfio-user-pristine); the cases that need our patches to
    # the library skip, each naming the patch.
    if printf '%s\n' "${qtests[@]}" | grep -qx vfio-user-interop-test; then
        VFIO_USER_SAMPLES="$build/libvfio-user-pristine/build/samples" \
        VFIO_USER_PRISTINE=1 \
            run_qtest vfio-user-interop-test vfio-user-interop-test-pristine \
                "vfio-user-interop-test against libvfio-user as shipped"
    fi
fi

# --- QEMU's unit tests of what our patches change outside hw/vfio --------
# patches/*qapi-string-input-visitor* extends the string input visitor
# (alternates, structs) and its unit test.
for u in test-string-input-visitor; do
    ulog=$log/unit-$u.log
    if ninja -C "$qbuild" "tests/unit/$u" >"$ulog" 2>&1 &&
            (cd "$qbuild" && timeout 300 "tests/unit/$u" --tap -k) \
                >>"$ulog" 2>&1 &&
            ! grep -q '^not ok' "$ulog"; then
        pass "unit $u ($(grep -c '^ok ' "$ulog") cases)"
    else
        fail "unit $u" "see $ulog"
    fi
done

# --- guest tests: Linux guests driving devices in another process ---------
# (make server and make libvfio-user built the peers; a SKIP there means a
# peer is missing, which is a failure here.)
if [ "${SKIP_GUEST_TESTS:-}" = 1 ]; then
    skip "guest tests (SKIP_GUEST_TESTS=1)"
else
    "$top/scripts/guest-tests.sh" "$top" >"$log/guest-tests.log" 2>&1
    while read -r verdict name rest; do
        case "$verdict" in
            PASS:) pass "guest $name $rest";;
            FAIL:|SKIP:) fail "guest $name" "$verdict $rest";;
        esac
    done < <(grep -E '^(PASS|FAIL|SKIP): ' "$log/guest-tests.log")
    grep -qE '^[0-9]+ passed, 0 failed' "$log/guest-tests.log" ||
        fail "guest tests" "see $log/guest-tests.log"
fi

# --- the benchmark harness runs (figures come from make bench) -------------
if BENCH_QUICK=1 "$top/scripts/bench.sh" "$top" >"$log/bench-quick.log" 2>&1 &&
        [ -s "$build/bench/results.csv" ]; then
    pass "make bench harness (quick run, every row measured, figures not checked)"
else
    tail -n 20 "$log/bench-quick.log"
    fail "make bench harness" "see $log/bench-quick.log"
fi

# --- 3. the series applies to pristine QEMU and builds ---------------------
if [ "${SKIP_PATCHSET_BUILD:-}" = 1 ]; then
    skip "patchset build test (SKIP_PATCHSET_BUILD=1)"
elif "$top/scripts/test-patchset.sh" "$top" "$cache" "$build/patchset" \
        "$build/patchset-test" >"$log/patchset-test.log" 2>&1; then
    pass "each series applies to pristine QEMU $(cat "$cache/qemu-version"); the three match the build tree and build"
else
    tail -n 20 "$log/patchset-test.log"
    fail "patchset apply+build" "see $log/patchset-test.log"
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
for s in "${skips[@]}"; do echo "skipped: $s"; done
grep -h '# SKIP' "$log"/qtest-*.log 2>/dev/null | sed 's/^/skipped: /'
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
