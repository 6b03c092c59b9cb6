#!/usr/bin/env bash
# Growth by realloc: one buffer grown by STEP KiB at a time to TOP MiB under
# the C library's realloc (glibc), a pinheap FIXED heap and a pinheap
# DYNAMIC heap. Runs the three in turn K times and prints, for each, the
# median seconds and the moves (calls that returned a new address), then
# the ratios of the medians.
#
# usage: run_realloc.sh [-k reps] [-s step_kib] [-t top_mib] [-T limit_s] [BUILD_DIR]
#   BUILD_DIR  the CMake build directory (runners in BUILD_DIR/bench), or the
#       directory of the runners itself (default: this script's directory,
#       then build/bench beside it)
#   -k  runs of each (default 5)
#   -s  step in KiB (default 64)
#   -t  final size in MiB (default 128)
#   -T  seconds one run may take (default 120): one that takes longer is
#       stopped and counted as taking the limit (its median then shows ">=")
# Exit status: 0, or 1 when a run failed its checks, 2 on bad usage.
set -u

reps=5 step=64 top=128 limit=120
usage() { sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while getopts "k:s:t:T:h" opt; do
  case $opt in
    k) reps=$OPTARG ;;
    s) step=$OPTARG ;;
    t) top=$OPTARG ;;
    T) limit=$OPTARG ;;
    h) usage 0 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
here=$(cd "$(dirname "$0")" && pwd)
dir=""
for d in ${1:+"$1/bench" "$1"} "$here" "$here/../build/bench"; do
  if [ -x "$d/bench_realloc_pinheap" ] && [ -x "$d/bench_realloc_glibc" ]; then dir=$d; break; fi
done
[ -n "$dir" ] || { echo "run_realloc.sh: bench_realloc_pinheap and bench_realloc_glibc not found" >&2; exit 2; }

declare -A secs moves
status=0
for ((r = 0; r < reps; r++)); do
  for who in glibc fixed dynamic; do
    if [ "$who" = glibc ]; then cmd=("$dir/bench_realloc_glibc" "$step" "$top")
    else cmd=("$dir/bench_realloc_pinheap" "$who" "$step" "$top"); fi
    out=$(timeout "$limit" "${cmd[@]}")
    rc=$?
    if [ "$rc" -eq 124 ]; then
      secs[$who]+="$limit "
      moves[$who]+="? "
    elif [ "$rc" -ne 0 ]; then
      echo "run_realloc.sh: $who failed ($rc)" >&2
      status=1
    else
      secs[$who]+="$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out") "
      moves[$who]+="$(sed -n 's/.*moves=\([0-9]*\).*/\1/p' <<<"$out") "
    fi
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -E '^[0-9.]+$' | sort -g | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : "nan"}'; }
echo "realloc growth: ${step} KiB steps to ${top} MiB ($((top * 1024 / step)) calls), median of $reps"
printf '%-8s %10s %8s\n' allocator seconds moves
declare -A med
for who in glibc fixed dynamic; do
  med[$who]=$(median "${secs[$who]:-}")
  mark=""
  awk -v m="${med[$who]}" -v l="$limit" 'BEGIN {exit !(m >= l)}' && mark=">="
  printf '%-8s %10s %8s\n' "$who" "$mark${med[$who]}" "$(median "${moves[$who]:-}")"
done
ratio() { awk -v a="${med[$1]}" -v b="${med[$2]}" 'BEGIN {printf (b > 0 ? "%.2f" : "nan"), (b > 0 ? a / b : 0)}'; }
echo "dynamic/glibc $(ratio dynamic glibc)  fixed/glibc $(ratio fixed glibc)  dynamic/fixed $(ratio dynamic fixed)"
exit $status
