#!/usr/bin/env bash
# Two builds of one benchmark runner side by side: runs A and B alternately
# (A B B A A B ...), K times each, with the same arguments, and prints the
# median ops/s of each, their ratio B / A, and the median of the ratios of
# each B run to the A run beside it (steadier when the load changes). For a change's cost: A the
# runner built before it, B after.
#
# usage: run_ab.sh [-k reps] A_RUNNER B_RUNNER [runner arguments...]
#   e.g. run_ab.sh -k 11 old/bench/bench_small_pinheap build/bench/bench_small_pinheap -t 1 -r 2000000 -n 1000
#   -k  runs of each (default 11)
# The runners print a "RESULT ... ops_per_s=N" line (small_bench.h); -q is
# passed to them. With PINHEAP_BENCH_DRY_RUN=1 it checks that both runners
# are there, says what it would run, and stops.
set -u
reps=11
if [ "${1:-}" = -k ]; then reps=$2; shift 2; fi
[ $# -ge 2 ] || { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
a=$1 b=$2
shift 2
for r in "$a" "$b"; do [ -x "$r" ] || { echo "run_ab.sh: no runner $r" >&2; exit 2; }; done
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_ab.sh: dry run: $a and $b, $reps runs each, arguments -q $*"
  exit 0
fi
one() { "$1" -q "${@:2}" | sed -n 's/^RESULT .* ops_per_s=\([0-9]*\).*/\1/p'; }
sa=() sb=()
for ((r = 0; r < reps; r++)); do
  if ((r % 2)); then sb+=("$(one "$b" "$@")"); sa+=("$(one "$a" "$@")"); else sa+=("$(one "$a" "$@")"); sb+=("$(one "$b" "$@")"); fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[n++] = $1 } END { print n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 }'; }
ma=$(median "${sa[@]}") mb=$(median "${sb[@]}")
# Each B run over the A run beside it: both saw about the same load.
pairs=()
for ((r = 0; r < reps; r++)); do
  pairs+=("$(awk -v a="${sa[$r]}" -v b="${sb[$r]}" 'BEGIN { printf "%.4f", (a > 0 ? b / a : 0) }')")
done
echo "args: $*"
echo "A $a: median $ma ops/s of $reps (${sa[*]})"
echo "B $b: median $mb ops/s of $reps (${sb[*]})"
awk -v a="$ma" -v b="$mb" -v p="$(median "${pairs[@]}")" \
  'BEGIN { printf "B / A = %.3f (medians), %.3f (median of the %s pairs side by side)\n", (a > 0 ? b / a : 0), p, "'"$reps"'" }'
