#!/usr/bin/env bash
# Runs the integration tests under valgrind's memcheck (any report fails the
# run), and checks that memcheck does report the errors of
# tests/valgrind/misuse.c: under valgrind the heap tells memcheck which of
# its memory is live blocks (src/debug.c), so that it sees a use after free
# in the heap's own memory.
#
# Not run under memcheck: test_debug (it reads freed memory on purpose, to
# see the poison), and the unit and stress tests (no heap, or minutes under
# valgrind; the sanitizer runs cover them).
#
#   tests/valgrind.sh [BUILD_DIR, default build]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
command -v valgrind > /dev/null || { echo "valgrind.sh: valgrind not found (scripts/deps.sh installs it)" >&2; exit 1; }
# A child that crashes under valgrind can leave its parent waiting: bounded.
vg=(timeout -k 10 300 valgrind --error-exitcode=99)
passed=0 failed=0
for t in test_api test_provider test_dynamic test_faults test_report; do
  log=$build/valgrind-$t.log
  start=$SECONDS
  if "${vg[@]}" -q "$build/tests/$t" > "$log" 2>&1; then
    echo "ok: memcheck: $t ($((SECONDS - start)) s)"
    passed=$((passed + 1))
  else
    echo "FAILED: memcheck: $t (see $log)"
    grep -E '^==[0-9]+== [A-Z]|FAILED' "$log" | head -10 || true
    failed=$((failed + 1))
  fi
done

# The misuse program: each of its errors reported, and nothing else.
log=$build/valgrind-misuse.log
"${vg[@]}" "$build/tests/valgrind_misuse" > "$log" 2>&1 || true
expect=("Invalid read of size 1" "5 bytes inside a block of size 112 free'd" "Invalid write of size 1"
        "10 bytes inside a block of size 102,400 free'd" "Conditional jump or move depends on uninitialised value")
missing=0
for e in "${expect[@]}"; do grep -qF "$e" "$log" || { echo "valgrind.sh: memcheck did not report: $e" >&2; missing=1; }; done
reports=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | head -1)
if [ "$missing" -eq 0 ] && [ "${reports:-0}" -eq 4 ]; then
  echo "ok: memcheck: misuse: its 4 errors reported"
  passed=$((passed + 1))
else
  echo "FAILED: memcheck: misuse: ${reports:-no} reports, 4 expected (see $log; was the library built with" \
       "valgrind's headers? PINHEAP_HAVE_VALGRIND in $build/CMakeCache.txt)"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
