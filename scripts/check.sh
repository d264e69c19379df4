#!/bin/bash
# check.sh: `make check`. Builds everything with ASan+UBSan into build-san/,
# runs the unit tests (Check), then the integration tests (bats, real etcd),
# the fuzz smoke run and the benchmark smoke run, and ends with one line
# "N passed, N failed" summing them all.
#   CHECK_ONLY=unit|sim|integration|fuzz|bench   run one part
#   BATS_FILTER=regex                         only integration tests matching
set -u
cd "$(dirname "$0")/.."
B=${B:-build-san}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
passed=0
failed=0
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

if [ "$part" = all ] || [ "$part" = integration ]; then
        echo "== integration tests (bats, real etcd)"
        files=$(ls tests/integration/*.bats 2>/dev/null)
        if [ -n "$files" ]; then
                args=()
                [ -n "${BATS_FILTER:-}" ] && args=(--filter "$BATS_FILTER")
                out=$(mktemp)
                bats --tap "${args[@]}" $files 2>&1 | tee "$out"
                p=$(grep -cE '^ok ' "$out")
                f=$(grep -cE '^not ok ' "$out")
                passed=$((passed + p))
                failed=$((failed + f))
                echo "bats: $p passed, $f failed"
                rm -f "$out"
        fi
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
                echo "== benchmark smoke run"
                if BENCH_SMOKE=1 MGMT_BIN=$PWD/$B bench/run.sh; then
                        passed=$((passed + 1))
                else
                        echo "benchmark smoke run failed"
                        failed=$((failed + 1))
                fi
        fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
