#!/usr/bin/env bash
# Small-object patterns (bench/pattern_bench.h): pinheap FIXED, pinheap
# SIMPLE, jemalloc (as malloc) and mimalloc (exclusive arena), K runs each
# per pattern, alternating the allocators, and prints the median CPU time per
# op of each, its spread (lowest..highest), the ratio of its median to
# jemalloc's (below 1: it spends less CPU per op than jemalloc), and the
# median of the ratios of each of its runs to jemalloc's run of the same turn
# (steadier when the load changes).
#
# usage: run_patterns.sh [-p patterns] [-k reps] [-x scale] [-s seed]
#                        [-T budget_s] [-b bindir] [-B base_bindir] [-v] [BUILD_DIR]
#   BUILD_DIR  the CMake build directory (runners in BUILD_DIR/bench), or the
#       directory of the runners itself
#   -p  patterns, a comma list of burst, prodcons, spawn (default all three)
#   -k  runs per allocator and pattern; the median is reported (default 5)
#   -x  scale: rounds = each pattern's default x scale (default 1; may be 0.1)
#   -s  seed for every run (default 12345)
#   -T  time budget in seconds (default 120): no run starts after it is spent,
#       and a run still going when it is spent (5 s grace at least) is killed
#       and counted as failed
#   -b  directory of the bench_pattern_* runners (default: this script's
#       directory, then build/bench and ../build/bench beside it)
#   -B  directory of another build's bench_pattern_pinheap (say, before a
#       change): its FIXED and SIMPLE runs join the turns, as base-fixed and
#       base-simple, with their ratio to this build's
#   -v  print every sample, not only the medians
# Exit status: 0 when every run passed its checks, 1 when one failed, 2 on
# bad usage or missing runners.
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# programs, says what it would run, and exits (0) without running them.
set -u

patterns="burst,prodcons,spawn"
reps=5
scale=1
seed=12345
budget=120
bindir=""
basedir=""
verbose=0

usage() { sed -n '2,/^# bad usage/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

builddir=""
parse_opts() {
  local opt
  OPTIND=1
  while getopts "p:k:x:s:T:b:B:vh" opt; do
    case $opt in
      p) patterns=$OPTARG ;;
      k) reps=$OPTARG ;;
      x) scale=$OPTARG ;;
      s) seed=$OPTARG ;;
      T) budget=$OPTARG ;;
      b) bindir=$OPTARG ;;
      B) basedir=$OPTARG ;;
      v) verbose=1 ;;
      h) usage 0 ;;
      *) usage ;;
    esac
  done
}
parse_opts "$@"
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
  builddir=$1
  shift
  parse_opts "$@"
  shift $((OPTIND - 1))
fi
[ $# -eq 0 ] || usage

isnum() { [[ $1 =~ ^[0-9]+$ ]]; }
isnum "$reps" && [ "$reps" -ge 1 ] || { echo "run_patterns.sh: bad -k $reps" >&2; exit 2; }
isnum "$budget" && [ "$budget" -ge 1 ] || { echo "run_patterns.sh: bad -T $budget" >&2; exit 2; }
isnum "$seed" || { echo "run_patterns.sh: bad -s $seed" >&2; exit 2; }
[[ $scale =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "run_patterns.sh: bad -x $scale" >&2; exit 2; }
IFS=, read -r -a plist <<< "$patterns"
declare -A defrounds=([burst]=2000 [prodcons]=20000 [spawn]=2000)
for p in "${plist[@]}"; do
  [ -n "${defrounds[$p]:-}" ] || { echo "run_patterns.sh: unknown pattern '$p'" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
if [ -n "$builddir" ] && [ -z "$bindir" ]; then
  for d in "$builddir/bench" "$builddir"; do
    if [ -x "$d/bench_pattern_jemalloc" ]; then bindir=$d; break; fi
  done
  [ -n "$bindir" ] || { echo "run_patterns.sh: no bench_pattern_* runners in $builddir/bench or $builddir; build first" >&2; exit 2; }
fi
if [ -z "$bindir" ]; then
  for d in "$here" "$here/../build/bench" "$here/build/bench"; do
    if [ -x "$d/bench_pattern_jemalloc" ]; then bindir=$d; break; fi
  done
fi
[ -n "$bindir" ] || { echo "run_patterns.sh: no bench_pattern_* runners found; build first, or pass -b DIR" >&2; exit 2; }
if [ -n "$basedir" ] && [ ! -x "$basedir/bench_pattern_pinheap" ]; then
  echo "run_patterns.sh: no bench_pattern_pinheap in $basedir (-B)" >&2; exit 2
fi

allocs=(pinheap-fixed pinheap-simple jemalloc mimalloc)
[ -n "$basedir" ] && allocs+=(base-fixed base-simple)
# An allocator's runner, and the PINHEAP_MODE it runs with.
runner() {
  case $1 in
    pinheap-*) echo "$bindir/bench_pattern_pinheap" ;;
    base-*) echo "$basedir/bench_pattern_pinheap" ;;
    *) echo "$bindir/bench_pattern_$1" ;;
  esac
}
mode() { case $1 in *-simple) echo simple ;; *) echo fixed ;; esac; }
declare -A present
for a in "${allocs[@]}"; do
  if [ -x "$(runner "$a")" ]; then present[$a]=1; else
    present[$a]=0
    echo "run_patterns.sh: $(runner "$a") not built; its column shows n/a" >&2
  fi
done
rounds_of() { awk -v b="${defrounds[$1]}" -v s="$scale" 'BEGIN { r = int(b * s); if (r < 1) r = 1; printf "%d", r }'; }

if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_patterns.sh: dry run: ${allocs[*]} from $bindir${basedir:+ and $basedir}, patterns $patterns," \
       "$reps runs each, scale $scale, seed $seed, budget ${budget}s"
  exit 0
fi
echo "small-object patterns: seed=$seed scale=$scale reps=$reps (median, lowest..highest) budget=${budget}s"
echo "runners: $bindir${basedir:+, base: $basedir}"
echo "CPU time per op (one malloc or one free), every thread of the process, in ns"

samples=$(mktemp)
errlog=$(mktemp)
trap 'rm -f "$samples" "$errlog"' EXIT
status=0
start=$SECONDS
out_of_time=0
for p in "${plist[@]}"; do
  rounds=$(rounds_of "$p")
  for ((r = 1; r <= reps; r++)); do
    if ((r % 2)); then order=("${allocs[@]}"); else order=(); for a in "${allocs[@]}"; do order=("$a" "${order[@]}"); done; fi
    for a in "${order[@]}"; do
      [ "${present[$a]}" = 1 ] || continue
      left=$((budget - (SECONDS - start)))
      if ((left <= 0)); then out_of_time=1; break 3; fi
      ((left >= 5)) || left=5
      line=$(PINHEAP_MODE=$(mode "$a") PINHEAP_DEBUG=0 timeout -k 2 "$left" "$(runner "$a")" -q -p "$p" \
             -r "$rounds" -s "$seed" 2>>"$errlog")
      rc=$?
      ns=$(printf '%s\n' "$line" | sed -n 's/^RESULT .* cpu_ns_per_op=\([0-9.]*\).*/\1/p')
      if [ $rc -ne 0 ] || [ -z "$ns" ]; then
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="killed after ${left}s, the time budget"; else why="exit $rc"; fi
        echo "run_patterns.sh: $a -p $p FAILED ($why)" >&2
        echo "$a $p $r FAIL" >> "$samples"
        status=1
      else
        echo "$a $p $r $ns" >> "$samples"
        [ $verbose = 1 ] && echo "  sample: $a $p cpu_ns_per_op=$ns"
      fi
    done
  done
done
if [ -s "$errlog" ]; then
  echo "--- runner errors ---" >&2
  cat "$errlog" >&2
fi
[ $out_of_time = 1 ] && echo "run_patterns.sh: time budget of ${budget}s spent; later runs skipped" >&2

# Median, lowest and highest per (allocator, pattern): "FAIL", "n/a" or "m lo hi n".
median_of() { sort -g | awk '{ v[n++] = $1 } END { if (n) print (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2 }'; }
stat() {
  awk -v a="$1" -v p="$2" '
    $1 == a && $2 == p { if ($4 == "FAIL") fail = 1; else v[n++] = $4 }
    END {
      if (fail) { print "FAIL"; exit }
      if (n == 0) { print "n/a"; exit }
      for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      m = (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
      printf "%.2f %.2f %.2f %d\n", m, v[0], v[n - 1], n
    }' "$samples"
}
# Each run of a over the run of b in the same turn (both saw about the same
# load), one a line.
pair_ratios() {
  awk -v a="$1" -v b="$2" -v p="$3" '
    $2 == p && $4 != "FAIL" { if ($1 == a) x[$3] = $4; if ($1 == b) y[$3] = $4 }
    END { for (r in x) if (r in y && y[r] > 0) printf "%.4f\n", x[r] / y[r] }' "$samples"
}
echo
printf '%-9s  %-15s  %28s  %17s  %15s\n' pattern allocator "ns/op median (lo..hi) [runs]" "ratio to jemalloc" "paired ratio"
for p in "${plist[@]}"; do
  read -r jm _ < <(stat jemalloc "$p")
  for a in "${allocs[@]}"; do
    read -r m lo hi n < <(stat "$a" "$p")
    pr=$(pair_ratios "$a" jemalloc "$p" | median_of)
    awk -v p="$p" -v a="$a" -v m="$m" -v lo="${lo:-}" -v hi="${hi:-}" -v n="${n:-0}" -v j="$jm" -v pr="${pr:-n/a}" '
      function num(x) { return x ~ /^[0-9.]+$/ }
      BEGIN {
        cell = num(m) ? sprintf("%.2f (%.2f..%.2f) [%d]", m, lo, hi, n) : m
        ratio = num(m) && num(j) && j > 0 ? sprintf("%.3f", m / j) : "n/a"
        printf "%-9s  %-15s  %28s  %17s  %15s\n", p, a, cell, ratio, num(pr) ? sprintf("%.3f", pr) : "n/a"
      }'
  done
  if [ -n "$basedir" ]; then
    for mo in fixed simple; do
      read -r am _ < <(stat "pinheap-$mo" "$p")
      read -r bm _ < <(stat "base-$mo" "$p")
      pr=$(pair_ratios "pinheap-$mo" "base-$mo" "$p" | median_of)
      awk -v p="$p" -v mo="$mo" -v a="$am" -v b="$bm" -v pr="${pr:-0}" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0)
          printf "%-9s  this build / base, %s: %.3f (medians), %.3f (paired)\n", p, mo, a / b, pr }'
    done
  fi
done
echo "elapsed: $((SECONDS - start)) s"
exit $status
