#!/usr/bin/env bash
# Large blocks in a FIXED heap, a DYNAMIC heap with the cache of direct
# registrations (its defaults, or -c BYTES), a DYNAMIC heap without it
# (PINHEAP_DIRECT_CACHE=0: every direct block registered when allocated and
# given back when freed), and jemalloc's default malloc, side by side: the
# small-object harness (small_bench.h) over large sizes, the four runs
# alternated K times per size range and thread count. Prints the median
# ops/s of each, the ratios to FIXED and to jemalloc, and for the pinheap
# runs the most bytes registered at once (stats.peak_capacity; FIXED: its
# region).
#
# usage: run_direct.sh [-k reps] [-r rounds] [-n slots] [-t threads] [-c bytes]
#                      [-z MIN:MAX[,MIN:MAX...]] [BUILD_DIR]
#   -k  runs of each (default 7)     -r  rounds per thread (default 20000)
#   -n  live blocks per thread (default 40)
#   -t  thread counts, a comma list (default 1,2)
#   -c  PINHEAP_DIRECT_CACHE for the cached run (default: the library's)
#   -z  size ranges in bytes (default 1 MiB:16 MiB and 4 MiB:64 MiB)
#   BUILD_DIR  the CMake build directory (default build)
# The FIXED region is 4 GiB: keep slots x threads x MAX below it. With
# PINHEAP_BENCH_DRY_RUN=1 it checks the runners and says what it would run.
set -u
reps=7 rounds=20000 slots=40 threads=1,2 cache= ranges=1048576:16777216,4194304:67108864
while getopts k:r:n:t:c:z:h o; do
  case $o in
    k) reps=$OPTARG ;; r) rounds=$OPTARG ;; n) slots=$OPTARG ;; t) threads=$OPTARG ;;
    c) cache=$OPTARG ;; z) ranges=$OPTARG ;;
    *) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
bin=${1:-build}/bench
for r in bench_small_pinheap bench_small_jemalloc; do
  [ -x "$bin/$r" ] || { echo "run_direct.sh: no runner $bin/$r" >&2; exit 2; }
done
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_direct.sh: dry run: sizes $ranges, threads $threads, $reps runs each, $rounds rounds, $slots slots"
  exit 0
fi
runs=(fixed cached uncached jemalloc)
declare -A envs=([fixed]="PINHEAP_MODE=fixed" [cached]="PINHEAP_MODE=dynamic${cache:+ PINHEAP_DIRECT_CACHE=$cache}"
                 [uncached]="PINHEAP_MODE=dynamic PINHEAP_DIRECT_CACHE=0" [jemalloc]="")
median() { sort -n | awk '{ v[n++] = $1 } END { print n ? (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0 }'; }
status=0
printf '%-22s %3s  %10s %10s %10s %10s  %7s %7s %7s  %s\n' sizes thr "FIXED" "cached" "uncached" "jemalloc" \
  "c/FIXED" "u/FIXED" "c/je" "peak registered MiB: FIXED cached uncached"
for range in ${ranges//,/ }; do
  min=${range%%:*} max=${range##*:}
  for t in ${threads//,/ }; do
    samples=$(mktemp)
    for ((k = 0; k < reps; k++)); do
      for run in "${runs[@]}"; do
        runner=$bin/bench_small_pinheap
        [ $run = jemalloc ] && runner=$bin/bench_small_jemalloc
        out=$(env ${envs[$run]} "$runner" -t "$t" -r "$rounds" -n "$slots" -m 4096 -a "$min" -b "$max" 2>&1)
        ops=$(sed -n 's/^RESULT .* ops_per_s=\([0-9]*\).*/\1/p' <<< "$out")
        [ -n "$ops" ] || { echo "run_direct.sh: $run failed: $out" >&2; status=1; continue; }
        echo "$run $ops $(sed -n 's/.*peak_capacity=\([0-9]*\).*/\1/p' <<< "$out")" >> "$samples"
      done
    done
    declare -A m=() p=()
    for run in "${runs[@]}"; do
      m[$run]=$(awk -v r=$run '$1 == r { print $2 }' "$samples" | median)
      p[$run]=$(awk -v r=$run '$1 == r && $3 > x { x = $3 } END { printf "%.0f", x / 1048576 }' "$samples")
    done
    rm -f "$samples"
    awk -v s="$min:$max" -v t="$t" -v f="${m[fixed]}" -v c="${m[cached]}" -v u="${m[uncached]}" -v j="${m[jemalloc]}" \
        -v pf="${p[fixed]}" -v pc="${p[cached]}" -v pu="${p[uncached]}" 'function r(a, b) { return b > 0 ? a / b : 0 }
      BEGIN { printf "%-22s %3s  %10.0f %10.0f %10.0f %10.0f  %7.2f %7.2f %7.2f  %s %s %s\n", s, t, f, c, u, j,
              r(c, f), r(u, f), r(c, j), pf, pc, pu }'
  done
done
exit $status
