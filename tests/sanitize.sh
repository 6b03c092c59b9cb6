#!/usr/bin/env bash
# Builds the library and its tests with sanitizers and runs them:
# AddressSanitizer with UndefinedBehaviorSanitizer over the unit,
# integration and stress tests and the tool's trace tests (tools_traces:
# gen, convert, replay, size, and corrupt traces; tools_offline), with the library's
# expensive assertions (PINHEAP_ASSERT=expensive: every module's checker
# after each of its changes), ThreadSanitizer over the stress and soak
# tests, the small paths' threads (test_small_paths), the medium extents'
# caches (test_medium), the stats read beside allocating threads
# (test_stats), the libfabric provider's tests (when built), and
# the fork test, the fine path's and the objects going back to their
# arena (test_fine and test_inbound, which fork too) without the deadlock
# detector. Any report fails the run.
#
#   tests/sanitize.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
passed=0 failed=0
run() { # name, build dir, flags, ctest regex, environment, assertions
  local name=$1 dir=$2 flags=$3 regex=$4 envs=$5 asserts=${6:-}
  # One log per run: two runs share the TSan build, and the second must not
  # overwrite what the first failed with.
  local log
  log="$dir/sanitize-$(echo "$name" | tr -c 'A-Za-z0-9\n' '-').log"
  # The MPI provider's tests are multi-process runs, not run here: not built.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DPINHEAP_BUILD_BENCH=OFF -DPINHEAP_MPI=OFF -DCMAKE_C_FLAGS="$flags" \
    -DPINHEAP_ASSERT="$asserts" > /dev/null
  cmake --build "$dir" -j"$(nproc)" > /dev/null
  if env $envs ctest --test-dir "$dir" -R "$regex" --output-on-failure --timeout 600 > "$log" 2>&1 &&
     ! grep -qE 'ERROR: (Address|Thread|Undefined)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$log"; then
    echo "ok: $name: $(grep -E 'tests passed' "$log")"
    passed=$((passed + 1))
  else
    echo "FAILED: $name (see $log)"
    grep -E 'Sanitizer|runtime error|Failed' "$log" | head -10 || true
    failed=$((failed + 1))
  fi
}
run "ASan+UBSan" build-asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
  '^(test_|stress_threads$|stress_threads_dynamic$|stress_medium(_roomy)?$|tools_(traces|offline)$)' "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1" expensive
run "TSan" build-tsan "-fsanitize=thread -Wno-error=tsan" \
  '^(stress_threads(_dynamic)?|stress_medium(_roomy)?|soak(_dynamic|_debug)?|test_small_paths|test_medium|test_stats|test_ofi_tcp|test_ofi_shm)$' "TSAN_OPTIONS=halt_on_error=1"
# Without the deadlock detector: jemalloc's own fork handler holds more
# mutexes at once than it tracks (64), and its internal check then fails
# (test_fine and test_inbound fork for what must abort; test_fork_stats forks
# while another thread reads the stats; test_fork_caches while 16 threads
# allocate).
run "TSan, fork" build-tsan "-fsanitize=thread -Wno-error=tsan" '^(test_fork|test_fork_stats|test_fork_caches|test_fine|test_inbound)$' \
  "TSAN_OPTIONS=halt_on_error=1:detect_deadlocks=0"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
