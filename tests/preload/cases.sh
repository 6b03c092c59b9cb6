#!/usr/bin/env bash
# Small programs under libpinheap-preload.so in each mode, with and without
# the debugging aids, each expecting a given outcome.
#
#   cases.sh PATH/TO/libpinheap-preload.so DIR_OF_TEST_PROGRAMS CASE
#   CASE: exit      allocation and free in pthread key destructors at
#                   thread exit (exit_alloc), plain and re-armed
#         badfree   the bad frees glibc catches (bad_free): each must abort
#                   under glibc, and under the library with a report that
#                   names the pointer; legitimate patterns must not
set -uo pipefail
lib=$(readlink -f "$1")
bin=$(readlink -f "$2")
case=$3
passed=0 failed=0

run() { # label, expected status, command...; the output goes to $out
  local label=$1 want=$2
  shift 2
  out=$(timeout 60 "$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$want" ]; then
    passed=$((passed + 1))
    echo "ok: $label: $(printf '%s' "$out" | tail -1)"
  else
    failed=$((failed + 1))
    echo "FAILED: $label: exit status $rc, expected $want"
    printf '%s\n' "$out" | tail -5 | sed 's/^/  /'
  fi
}

# The bad frees: glibc's outcome first, as the reference.
badfree_cases=(twice twice_between interior8 interior16)
if [ "$case" = badfree ]; then
  for c in "${badfree_cases[@]}"; do
    run "glibc, $c" 134 "$bin/preload_bad_free" $c
  done
fi

for debug in 0 1; do
  for mode in simple fixed dynamic; do
    env=(env PINHEAP_MODE=$mode PINHEAP_SIZE=1g PINHEAP_DEBUG=$debug LD_PRELOAD="$lib")
    case $case in
      exit)
        for rearm in 0 1 3; do
          run "$mode, debug $debug, key destructors re-armed $rearm times" 0 "${env[@]}" "$bin/preload_exit_alloc" $rearm
        done
        ;;
      badfree)
        for c in "${badfree_cases[@]}"; do
          run "$mode, debug $debug, $c" 134 "${env[@]}" "$bin/preload_bad_free" $c
          ptr=$(printf '%s\n' "$out" | sed -n 's/^pointer //p')
          if [ "$rc" -eq 134 ] && ! printf '%s\n' "$out" | grep -q "^pinheap: .*($ptr)"; then
            passed=$((passed - 1)) failed=$((failed + 1))
            echo "FAILED: $mode, debug $debug, $c: no report naming $ptr"
          fi
        done
        run "$mode, debug $debug, legitimate patterns" 0 "${env[@]}" "$bin/preload_bad_free" ok
        ;;
      *) echo "cases.sh: unknown case $case" >&2; exit 2 ;;
    esac
  done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
