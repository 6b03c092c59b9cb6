#!/usr/bin/env bash
# Throughput per size range and thread count in one run: pinheap FIXED
# against jemalloc's default malloc and mimalloc's exclusive arena, side by
# side. Runs bench/run_small.sh once per size range (the five ranges of the
# README, each with its live blocks per thread and its rounds), every thread
# count in turn, each allocator K times alternating, and prints the medians
# of all of them as one table.
#
# usage: run_throughput.sh [-k reps] [-t threads] [-r ranges] [-x scale]
#                          [-s seed] [-T budget_s] [-b bindir] [BUILD_DIR]
#   BUILD_DIR  the CMake build directory (runners in BUILD_DIR/bench)
#   -k  runs per allocator, range and thread count; the median (default 5)
#   -t  thread counts: a comma list, or "all" (1..nproc, the default)
#   -r  which ranges, a comma list of their numbers (default 1,2,3,4,5):
#       1: 16 B - 1 KiB, 2: 1 - 14 KiB, 3: 14 - 64 KiB, 4: 64 KiB - 1 MiB,
#       5: 1 - 16 MiB
#   -x  scale of every range's rounds (default 1: the README's)
#   -s  seed of every run (default 12345)
#   -T  time budget in seconds for the whole run (default 600), shared out
#       among the ranges left: no run starts once a range's share is spent
#   -b  directory of the bench_small_* runners (passed to run_small.sh)
# Exit status: 0 when every run passed its checks, 1 when one failed, 2 on
# bad usage or missing runners.
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# programs, says what it would run, and exits (0) without running them.
set -u

reps=5
threads=all
ranges=1,2,3,4,5
scale=1
seed=12345
budget=600
bindir=""

usage() { sed -n '2,/^# bad usage/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

builddir=""
parse_opts() {
  local opt
  OPTIND=1
  while getopts "k:t:r:x:s:T:b:h" opt; do
    case $opt in
      k) reps=$OPTARG ;;
      t) threads=$OPTARG ;;
      r) ranges=$OPTARG ;;
      x) scale=$OPTARG ;;
      s) seed=$OPTARG ;;
      T) budget=$OPTARG ;;
      b) bindir=$OPTARG ;;
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
isnum "$reps" && [ "$reps" -ge 1 ] || { echo "run_throughput.sh: bad -k $reps" >&2; exit 2; }
isnum "$budget" && [ "$budget" -ge 1 ] || { echo "run_throughput.sh: bad -T $budget" >&2; exit 2; }
isnum "$seed" || { echo "run_throughput.sh: bad -s $seed" >&2; exit 2; }
[[ $scale =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "run_throughput.sh: bad -x $scale" >&2; exit 2; }
[ "$threads" = all ] && threads=$(seq -s, 1 "$(nproc)")
[[ $threads =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "run_throughput.sh: bad -t $threads" >&2; exit 2; }

# Per range: its name, run_small.sh's -z, live blocks per thread, rounds scale.
names=("16 B - 1 KiB" "1 - 14 KiB" "14 - 64 KiB" "64 KiB - 1 MiB" "1 - 16 MiB")
sizes=(16:1024 1024:14336 14337:65536 65536:1048576 1048576:16777216)
slots=(1000 1000 1000 100 20)
scales=(1 0.4 0.04 0.04 0.01)
IFS=, read -r -a rlist <<< "$ranges"
for r in "${rlist[@]}"; do
  [[ $r =~ ^[1-5]$ ]] || { echo "run_throughput.sh: bad range '$r' in -r (1 to 5)" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
small=("$here/run_small.sh" -k "$reps" -t "$threads" -s "$seed")
[ -n "$bindir" ] && small+=(-b "$bindir")
[ -n "$builddir" ] && small+=("$builddir")
# run_small.sh checks the runners: a dry run of it first, for every range.
for r in "${rlist[@]}"; do
  i=$((r - 1))
  x=$(awk -v a="${scales[$i]}" -v b="$scale" 'BEGIN { printf "%g", a * b }')
  out=$(PINHEAP_BENCH_DRY_RUN=1 bash "${small[@]}" -z "${sizes[$i]}" -n "${slots[$i]}" -x "$x" 2>&1) ||
    { echo "$out" >&2; exit 2; }
  [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ] && echo "run_throughput.sh: dry run: ${names[$i]}: $out"
done
[ -n "${PINHEAP_BENCH_DRY_RUN:-}" ] && exit 0

echo "throughput per size range: pinheap FIXED against jemalloc's default and mimalloc's arena;" \
     "threads $threads, median of $reps runs, seed $seed, budget ${budget}s"
table=$(mktemp)
trap 'rm -f "$table"' EXIT
status=0
start=$SECONDS
left_ranges=${#rlist[@]}
for r in "${rlist[@]}"; do
  i=$((r - 1))
  x=$(awk -v a="${scales[$i]}" -v b="$scale" 'BEGIN { printf "%g", a * b }')
  share=$(((budget - (SECONDS - start)) / left_ranges))
  ((share >= 1)) || share=1
  left_ranges=$((left_ranges - 1))
  echo "--- ${names[$i]}: run_small.sh -z ${sizes[$i]} -n ${slots[$i]} -x $x -T $share"
  out=$(bash "${small[@]}" -z "${sizes[$i]}" -n "${slots[$i]}" -x "$x" -T "$share")
  rc=$?
  [ $rc -eq 0 ] || status=1
  # The rows of run_small.sh's table: threads, three rates, two ratios.
  printf '%s\n' "$out" | awk -v name="${names[$i]}" '$1 ~ /^[0-9]+$/ && NF == 6 { print name "\t" $0 }' >> "$table"
  printf '%s\n' "$out" | grep -E '^\(\*|^elapsed' || true
done

echo
printf '%-16s %7s  %15s  %15s  %15s  %16s  %16s\n' "sizes" threads "pinheap Mops/s" "jemalloc Mops/s" \
  "mimalloc Mops/s" "pinheap/jemalloc" "pinheap/mimalloc"
awk -F'\t' '{ split($2, f, " "); printf "%-16s %7s  %15s  %15s  %15s  %16s  %16s\n", $1, f[1], f[2], f[3], f[4], f[5], f[6] }' "$table"
echo "elapsed: $((SECONDS - start)) s"
exit $status
