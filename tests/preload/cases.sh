#!/usr/bin/env bash
# Small programs under libpinheap-preload.so in each mode, with and without
# the debugging aids, each expecting a given outcome.
#
#   cases.sh PATH/TO/libpinheap-preload.so DIR_OF_TEST_PROGRAMS CASE
#   CASE: exit   allocation and free in pthread key destructors at thread
#                exit (exit_alloc), plain and re-armed
set -uo pipefail
lib=$(readlink -f "$1")
bin=$(readlink -f "$2")
case=$3
passed=0 failed=0

run() { # label, expected status, command...; the output goes to $out
  local label=$1 want=$2
  shift 2
  out=$(timeout 60 "$@" 2>&1)
  local rc=$?
  if [ "$rc" -eq "$want" ]; then
    passed=$((passed + 1))
    echo "ok: $label: $(printf '%s' "$out" | tail -1)"
  else
    failed=$((failed + 1))
    echo "FAILED: $label: exit status $rc, expected $want"
    printf '%s\n' "$out" | tail -5 | sed 's/^/  /'
  fi
}

for debug in 0 1; do
  for mode in simple fixed dynamic; do
    env=(env PINHEAP_MODE=$mode PINHEAP_SIZE=1g PINHEAP_DEBUG=$debug LD_PRELOAD="$lib")
    case $case in
      exit)
        for rearm in 0 1 3; do
          run "$mode, debug $debug, key destructors re-armed $rearm times" 0 "${env[@]}" "$bin/preload_exit_alloc" $rearm
        done
        ;;
      *) echo "cases.sh: unknown case $case" >&2; exit 2 ;;
    esac
  done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
