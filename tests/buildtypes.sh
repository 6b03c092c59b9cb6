#!/usr/bin/env bash
# Builds the library, its tools and examples (not the tests and benchmarks)
# with each optimizing build type a user may pick besides the default
# (Release: -O3; MinSizeRel: -Os): the compiler's warnings, errors under
# -Werror, differ with the optimizer (GCC's maybe-uninitialized at -O3).
#
#   tests/buildtypes.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
failed=0
for type in Release MinSizeRel; do
  dir=build-$(echo "$type" | tr 'A-Z' 'a-z')
  mkdir -p "$dir"
  log=$dir/buildtypes.log
  if cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=$type -DPINHEAP_BUILD_TESTS=OFF -DPINHEAP_BUILD_BENCH=OFF > "$log" 2>&1 &&
     cmake --build "$dir" -j"$(nproc)" >> "$log" 2>&1; then
    echo "ok: $type build"
  else
    echo "FAILED: $type build (see $log)"
    grep -E 'error' "$log" | head -10 || true
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
