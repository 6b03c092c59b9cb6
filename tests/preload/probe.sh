#!/usr/bin/env bash
# Runs the probe (edge cases of the malloc family: errno, return values,
# alignment, the introspection calls) under glibc's malloc and under
# libpinheap-preload.so in each mode, with and without the debugging aids,
# and compares the outputs line by line.
#
#   probe.sh PATH/TO/libpinheap-preload.so PATH/TO/preload_probe
set -uo pipefail
lib=$(readlink -f "$1")
probe=$(readlink -f "$2")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-probe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0
"$probe" > "$tmp/glibc" || { echo "FAILED: the probe under glibc"; exit 1; }
for debug in 0 1; do
  for mode in simple fixed dynamic; do
    if env PINHEAP_MODE=$mode PINHEAP_SIZE=1g PINHEAP_DEBUG=$debug LD_PRELOAD="$lib" "$probe" > "$tmp/out" 2> "$tmp/err" &&
       diff "$tmp/glibc" "$tmp/out" > "$tmp/diff"; then
      echo "ok: $mode, debug $debug: $(wc -l < "$tmp/out") lines as glibc's"
    else
      echo "FAILED: $mode, debug $debug (< glibc, > pinheap):"
      sed 's/^/  /' "$tmp/diff" "$tmp/err" | head -40
      failed=$((failed + 1))
    fi
  done
done
[ "$failed" -eq 0 ]
