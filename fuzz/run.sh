#!/usr/bin/env bash
# Builds the fuzzers with clang (libFuzzer, ASan, UBSan) and runs each for
# the given number of seconds over a copy of its corpus in fuzz/corpus.
# A crash fails the run and leaves the input that crashed in build-fuzz/.
#
#   fuzz/run.sh [seconds per fuzzer, default 30]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-30}
build=build-fuzz
cmake -S fuzz -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build "$build" -j"$(nproc)" > /dev/null
passed=0 failed=0
for f in fuzz_em fuzz_api fuzz_trace; do
  corpus=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-$f.XXXXXX")
  name=${f#fuzz_}
  cp fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
  log=$build/$f.log
  if (cd "$build" && ASAN_OPTIONS=detect_leaks=0 ./"$f" -max_total_time="$secs" -print_final_stats=1 \
        -timeout=20 -rss_limit_mb=3072 "$corpus" > "$f.log" 2>&1); then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "ok: $f: $runs executions in ${secs} s ($rate per second)"
    passed=$((passed + 1))
  else
    echo "FAILED: $f (see $log and the crash-* input in $build)"
    grep -E 'ERROR|fuzz_(em|api|trace):|SUMMARY' "$log" | head -5 || true
    failed=$((failed + 1))
  fi
  rm -rf "$corpus"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
