#!/bin/bash
# check.sh: `make check`. Builds everything with ASan+UBSan into build-san/,
# runs the unit tests (Check), then the integration tests (bats, real etcd),
# the fuzz smoke run and the benchmark smoke run, and ends with one line
# "N passed, N failed" summing them all.
#   CHECK_ONLY=unit|sim|integration|fuzz|bench   run one part
#   BATS_FILTER=regex                         only integration tests matching
#   MGMT_ETCD_VERSIONS="3.4 3.5"              the etcd versions the integration
#                                             tests run on (default both): 3.4 the
#                                             system's, 3.5 Debian 13's (scripts/etcd35.sh)
set -u
cd "$(dirname "$0")/.."
B=${B:-build-san}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
passed=0
failed=0

# Every agent and supervisor a test starts holds inotify instances; the
# kernel's default of 128 per user runs out when the suite runs beside other
# work. As root, raise it for this machine (it only grows, never shrinks).
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/fs/inotify/max_user_instances ] &&
        [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
        echo "check: raising fs.inotify.max_user_instances from $(cat /proc/sys/fs/inotify/max_user_instances) to 1024"
        echo 1024 > /proc/sys/fs/inotify/max_user_instances || true
fi
part=${CHECK_ONLY:-all}

echo "== build (ASan+UBSan) in $B/"
if ! make -s -j"$(nproc)" B="$B" SAN=address,undefined all unit-bins; then
        echo "build failed"
        echo "0 passed, 1 failed"
        exit 1
fi
export MGMT_BIN=$PWD/$B

if [ "$part" = all ] || [ "$part" = unit ]; then
        echo "== unit tests (Check)"
        for t in "$B"/tests/test_*; do
                [ -x "$t" ] || continue
                out=$(CK_FORK=yes "$t" 2>&1)
                rc=$?
                echo "$out" | grep -E '^[0-9]+%: Checks|:[EF]:' || true
                line=$(echo "$out" | grep -E '^[0-9]+%: Checks:' | tail -1)
                if [ -n "$line" ]; then
                        c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
                        f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
                        e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
                        passed=$((passed + c - f - e))
                        failed=$((failed + f + e))
                        [ $rc -ne 0 ] && [ $((f + e)) -eq 0 ] && { echo "$t exited $rc"; echo "$out" | tail -20; failed=$((failed + 1)); }
                else
                        echo "$t: no Check summary (exit $rc)"
                        echo "$out" | tail -30
                        failed=$((failed + 1))
                fi
        done
fi

if [ "$part" = all ] || [ "$part" = unit ]; then
        echo "== format (clang-format --dry-run over the C sources, .clang-format)"
        if make -s format-check; then
                passed=$((passed + 1))
        else
                echo "format-check: the files above differ from .clang-format (run 'make format')"
                failed=$((failed + 1))
        fi
fi

if [ "$part" = all ] || [ "$part" = unit ] || [ "$part" = sim ]; then
        echo "== membership simulation (coordinator + role function, 10,000 schedules)"
        if "$B"/tests/membership-sim 10000; then
                passed=$((passed + 1))
        else
                failed=$((failed + 1))
        fi
        # regression: the old leave-before-remove order must break an invariant
        if "$B"/tests/membership-sim --legacy --seed 203 | tail -1 | grep -q "still in the member list"; then
                echo "sim: the legacy leave-before-remove order is caught (seed 203)"
                passed=$((passed + 1))
        else
                echo "sim: the legacy order was NOT caught by the invariants"
                failed=$((failed + 1))
        fi
fi

# bats_on LABEL DIR: the bats suite once, with etcd from DIR (empty: from
# PATH); adds to the totals and prints one line per run
bats_on() {
        local label=$1 dir=$2 files out p f
        files=$(ls tests/integration/*.bats 2>/dev/null)
        [ -n "$files" ] || return 0
        local args=()
        [ -n "${BATS_FILTER:-}" ] && args=(--filter "$BATS_FILTER")
        out=$(mktemp)
        local t0=$SECONDS
        # shellcheck disable=SC2086
        MGMT_TEST_ETCD_DIR=$dir bats --tap "${args[@]}" $files 2>&1 | tee "$out"
        p=$(grep -cE '^ok ' "$out")
        f=$(grep -cE '^not ok ' "$out")
        passed=$((passed + p))
        failed=$((failed + f))
        bats_lines+=("bats ($label): $p passed, $f failed")
        echo "bats ($label): took $((SECONDS - t0)) s"
        echo "${bats_lines[-1]}"
        rm -f "$out"
}

# etcd_version DIR: "3.4.23", the version of DIR/etcd (or etcd on PATH)
etcd_version() {
        "${1:+$1/}etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p'
}

if [ "$part" = all ] || [ "$part" = integration ]; then
        # MGMT_ETCD_VERSIONS: 3.4 is the system's etcd (PATH), 3.5 Debian 13's,
        # fetched into a cache by scripts/etcd35.sh (nothing installed)
        bats_lines=()
        for ver in ${MGMT_ETCD_VERSIONS:-3.4 3.5}; do
                case "$ver" in
                3.4)
                        v=$(etcd_version "")
                        echo "== integration tests (bats, real etcd ${v:-?}, the system's)"
                        bats_on "etcd ${v:-3.4 not found}" ""
                        ;;
                3.5)
                        if ! dir=$(scripts/etcd35.sh); then
                                echo "etcd 3.5 could not be fetched (scripts/etcd35.sh failed, see above): the integration tests on etcd 3.5 did not run"
                                failed=$((failed + 1))
                                bats_lines+=("bats (etcd 3.5): not run, etcd 3.5 could not be fetched (1 failed)")
                                continue
                        fi
                        v=$(etcd_version "$dir")
                        echo "== integration tests (bats, real etcd ${v:-?} from $dir)"
                        bats_on "etcd ${v:-3.5}" "$dir"
                        ;;
                *)
                        echo "MGMT_ETCD_VERSIONS: unknown etcd version '$ver' (known: 3.4 3.5)"
                        failed=$((failed + 1))
                        ;;
                esac
        done
        [ ${#bats_lines[@]} -gt 1 ] && printf '%s\n' "${bats_lines[@]}"
fi

if [ "$part" = all ] || [ "$part" = fuzz ]; then
        if [ -x tests/fuzz/run.sh ]; then
                echo "== fuzz smoke run"
                if tests/fuzz/run.sh "$PWD/build-fuzz" 20; then
                        passed=$((passed + 1))
                else
                        echo "fuzz run failed"
                        failed=$((failed + 1))
                fi
        fi
fi

if [ "$part" = all ] || [ "$part" = bench ]; then
        if [ -x bench/run.sh ]; then
                # on one etcd version: the first one selected
                bver=$(echo ${MGMT_ETCD_VERSIONS:-3.4} | cut -d' ' -f1)
                echo "== benchmark smoke run (etcd $bver)"
                if BENCH_SMOKE=1 MGMT_ETCD_VERSIONS=$bver MGMT_BIN=$PWD/$B bench/run.sh; then
                        passed=$((passed + 1))
                else
                        echo "benchmark smoke run failed"
                        failed=$((failed + 1))
                fi
        fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
