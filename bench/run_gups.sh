#!/usr/bin/env bash
# GUPS (examples/gups: HPC Challenge RandomAccess with MPI atomics) with the
# table in a pinheap symmetric heap and in MPI_Win_allocate memory, in turns,
# under each MPI built, at 2 and 4 ranks. Prints the best rate of each and
# the ratio pinheap / MPI_Win_allocate.
#
#   bench/run_gups.sh [build_dir] [log_local] [repeats]
#
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# programs, says what it would run, and exits (0) without running them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-build}
log=${2:-18}
reps=${3:-3}
[[ $# -le 3 && $log =~ ^[0-9]+$ && $reps =~ ^[1-9][0-9]*$ ]] && [ "$log" -ge 4 ] && [ "$log" -le 30 ] ||
  { sed -n '7p' "$0" >&2; echo "run_gups.sh: log_local 4..30, repeats > 0" >&2; exit 2; }
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  found=$(ls "$build"/examples/gups_* 2>/dev/null) || { echo "run_gups.sh: no gups built in $build" >&2; exit 2; }
  echo "run_gups.sh: dry run:" $found "at 2 and 4 ranks, 2^$log words per rank, best of $reps"
  exit 0
fi
export PINHEAP_MPI_TIMEOUT=${PINHEAP_MPI_TIMEOUT:-300}
ran=0
printf '%-8s %5s %14s %14s %8s\n' mpi ranks pinheap win_allocate ratio
for flavour in openmpi mpich; do
  exe=$build/examples/gups_$flavour
  [ -x "$exe" ] || continue
  ran=1
  for np in 2 4; do
    best_p=0 best_w=0
    for ((r = 0; r < reps; r++)); do
      for mode in pinheap win_allocate; do
        extra=()
        [ "$mode" = win_allocate ] && extra=(win_allocate)
        out=$(bash "$here/../tests/mpi/run.sh" "$flavour" "$np" "$exe" "$log" 1024 "${extra[@]}")
        rate=$(sed -n 's/^gups: \([0-9.]*\) GUP\/s.*/\1/p' <<<"$out")
        grep -q '^gups: 0 of' <<<"$out" || { echo "$out" >&2; echo "run_gups.sh: wrong words" >&2; exit 1; }
        if [ "$mode" = pinheap ]; then
          best_p=$(awk -v a="$best_p" -v b="$rate" 'BEGIN { print (b > a ? b : a) }')
        else
          best_w=$(awk -v a="$best_w" -v b="$rate" 'BEGIN { print (b > a ? b : a) }')
        fi
      done
    done
    printf '%-8s %5d %12s/s %12s/s %8.2f\n' "$flavour" "$np" "${best_p}G" "${best_w}G" \
      "$(awk -v a="$best_p" -v b="$best_w" 'BEGIN { print (b > 0 ? a / b : 0) }')"
  done
done
[ "$ran" = 1 ] || { echo "run_gups.sh: no gups built (no MPI found)" >&2; exit 2; }
