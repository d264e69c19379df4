#!/bin/sh
# run.sh OUTDIR [SECONDS]: build the libFuzzer target over graph_parse with
# clang (-fsanitize=fuzzer,address,undefined) into OUTDIR and run it for
# SECONDS (default 20) over a seed corpus made from tests/data/graphs.
# Exits non-zero if the build fails or the fuzzer finds a crash.
set -eu

out=${1:?usage: tests/fuzz/run.sh OUTDIR [SECONDS]}
secs=${2:-20}
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"

CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
        echo "tests/fuzz/run.sh: '$CLANG' not found: install the 'clang' package" >&2
        exit 1
fi
# libFuzzer's runtime lives in libclang-rt-NN-dev (Debian bookworm: libclang-rt-14-dev)
rt=$("$CLANG" -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
ver=$("$CLANG" -dumpversion 2>/dev/null | cut -d. -f1)
if [ -z "$rt" ] || [ ! -e "$rt" ]; then
        rt=$(ls /usr/lib/llvm-"$ver"/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | head -n1 || true)
fi
if [ -z "$rt" ] || [ ! -e "$rt" ]; then
        echo "tests/fuzz/run.sh: clang's libFuzzer runtime (libclang_rt.fuzzer) is missing: install the 'libclang-rt-$ver-dev' package" >&2
        exit 1
fi

mkdir -p "$out/corpus" "$out/artifacts"
# shellcheck disable=SC2046
"$CLANG" -g -O1 -std=gnu17 -D_GNU_SOURCE -DMGMT_VERSION='"fuzz"' -Ilib \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        $(pkg-config --cflags libcurl jansson yaml-0.1 libsystemd libbsd libcrypto libmicrohttpd) \
        -o "$out/fuzz_graph" tests/fuzz/fuzz_graph.c lib/*.c \
        $(pkg-config --libs libcurl jansson yaml-0.1 libsystemd libbsd libcrypto libmicrohttpd) -lm

for f in tests/data/graphs/good/*.yaml tests/data/graphs/bad/*.yaml; do
        cp "$f" "$out/corpus/$(basename "$(dirname "$f")")-$(basename "$f")"
done

echo "tests/fuzz/run.sh: fuzzing graph_parse for ${secs}s" >&2
"$out/fuzz_graph" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/" -print_final_stats=1 "$out/corpus" 2>"$out/fuzz.log" || {
        rc=$?
        tail -n 60 "$out/fuzz.log" >&2
        echo "tests/fuzz/run.sh: the fuzzer failed (exit $rc); crash inputs in $out/artifacts/" >&2
        exit 1
}
grep -E '^stat::number_of_executed_units|^Done' "$out/fuzz.log" >&2 || true
echo "tests/fuzz/run.sh: no crash" >&2
