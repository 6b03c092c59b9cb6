#!/usr/bin/env bash
# libpinheap-shmem against Open MPI's OSHMEM's own symmetric heap, with
# each of its memheap components, ptmalloc (dlmalloc, the default) and
# buddy: the same OpenSHMEM program (bench_shmem.c) under oshrun, as it is
# and with libpinheap-shmem.so in LD_PRELOAD (over ptmalloc's heap), in
# turns, and the ratios of runs made side by side.
#   speed  shmem_malloc + shmem_free pairs per second (the calls'
#          collectives included), 64 B, 64 KiB and 8 MiB; median of the
#          alternating runs
#   H/M    for generated PGAS-like workloads (bench_shmem.c; one per seed),
#          the smallest heap that completes the workload (bisection to
#          1 MiB over SHMEM_SYMMETRIC_HEAP_SIZE, and for libpinheap-shmem
#          over PINHEAP_SHMEM_SIZE, the block it takes of the
#          implementation's heap) divided by the workload's peak live bytes
#
# usage: run_shmem.sh [-n pes] [-s seeds] [-r runs] [-q] [BUILD_DIR]
#   BUILD_DIR  the CMake build directory (default: build beside this
#       script's directory)
#   -n  PEs per job (default 2)
#   -s  workloads, seeds 1..N (default 3)
#   -r  alternating runs per size (default 5)
#   -q  quick: 64 B only, one run, one seed, each allocator run once in a
#       heap of twice the peak instead of the bisection (a smoke run)
# Exit status: 0 when every job ran and libpinheap-shmem completed every
# workload it was given room for, 1 otherwise, 2 on bad usage.
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# programs, says what it would run, and exits (0) without running them.
set -u

pes=2 seeds=3 runs=5 quick=0
while getopts "n:s:r:qh" opt; do
  case $opt in
    n) pes=$OPTARG ;;
    s) seeds=$OPTARG ;;
    r) runs=$OPTARG ;;
    q) quick=1 ;;
    *) sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || { echo "run_shmem.sh: one BUILD_DIR at most" >&2; exit 2; }
for v in "$pes" "$seeds" "$runs"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "run_shmem.sh: bad number '$v'" >&2; exit 2; }
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../build}
runner=$build/bench/bench_shmem lib=$build/libpinheap-shmem.so
for f in "$runner" "$lib"; do
  [ -e "$f" ] || { echo "run_shmem.sh: $f not found (is oshcc installed? build with cmake first)" >&2; exit 2; }
done
command -v oshrun >/dev/null || { echo "run_shmem.sh: no oshrun (Open MPI's OSHMEM)" >&2; exit 2; }
launch=$here/../tests/mpi/run.sh
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_shmem.sh: dry run: $runner under oshrun -np $pes, alone (ptmalloc, buddy) and with $lib;" \
    "$runs runs per size, $seeds workloads$([ "$quick" = 1 ] && echo ', quick')"
  exit 0
fi
MiB=1048576
# What the jobs, run in command substitutions, leave for the end.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_shmem.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# job WHO HEAP_MIB ARGS...: one oshrun job of the runner with WHO
# (ptmalloc, buddy, pinheap) serving shmem_malloc in a heap of HEAP_MIB;
# prints its RESULT line without the word RESULT. A job without one is
# noted in $tmp/crashed (a workload: the allocator crashed instead of
# returning NULL) or $tmp/failed.
job() {
  local who=$1 heap=$2 out
  shift 2
  if [ "$who" = pinheap ]; then
    # The block takes HEAP_MIB; the implementation's heap has room beside it.
    out=$(SHMEM_SYMMETRIC_HEAP_SIZE="$((heap + 16))M" PINHEAP_SHMEM_SIZE="${heap}M" \
      bash "$launch" oshmem "$pes" env LD_PRELOAD="$lib" "$runner" "$@" 2>&1)
  else
    out=$(SHMEM_SYMMETRIC_HEAP_SIZE="${heap}M" OMPI_MCA_memheap="$who" bash "$launch" oshmem "$pes" "$runner" "$@" 2>&1)
  fi
  if ! grep -q '^RESULT ' <<<"$out"; then
    if [ "$1" = workload ] && [ "$who" != pinheap ]; then
      why=$(grep -m1 -oE 'Caught signal [0-9]+ \([^)]*\)|signal [0-9]+' <<<"$out")
      echo "$who $heap MiB seed $2: $why" >>"$tmp/crashed"
    else
      echo "run_shmem.sh: FAILED: $who, $heap MiB, $*:" >&2
      tail -5 <<<"$out" >&2
      echo "$who $*" >>"$tmp/failed"
    fi
  fi
  sed -n 's/^RESULT //p' <<<"$out"
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

sizes="64 65536 8388608"
[ "$quick" = 1 ] && sizes=64 runs=1 seeds=1
echo "== shmem_malloc + shmem_free pairs per second, $pes PEs, collectives included (median of $runs alternating runs)"
printf '%-9s %12s %12s %12s %18s %15s\n' size ptmalloc buddy pinheap "pinheap/ptmalloc" "pinheap/buddy"
for size in $sizes; do
  declare -A t=()
  for r in $(seq 1 "$runs"); do
    for who in ptmalloc buddy pinheap; do
      res=$(job "$who" 256 speed "$size" 2000)
      t[$who]+="$(field "$res" us_per_pair) "
    done
  done
  declare -A rate=()
  for who in ptmalloc buddy pinheap; do
    us=$(tr ' ' '\n' <<<"${t[$who]}" | sed '/^$/d' | median)
    rate[$who]=$(awk -v us="${us:-0}" 'BEGIN { printf "%.0f", (us > 0 ? 1e6 / us : 0) }')
  done
  awk -v s="$size" -v a="${rate[ptmalloc]}" -v b="${rate[buddy]}" -v p="${rate[pinheap]}" 'BEGIN {
    printf "%-9s %12d %12d %12d %18.2f %15.2f\n", s, a, b, p, (a ? p / a : 0), (b ? p / b : 0) }'
  unset t rate
done

# completes WHO HEAP_MIB SEED: whether the workload completes in that heap.
completes() { [ "$(field "$(job "$1" "$2" workload "$3")" completed)" = 1 ]; }

echo
echo "== H/M: smallest heap (MiB) that completes the workload / its peak live bytes, $pes PEs"
printf '%-5s %9s %16s %16s %16s\n' seed peak_MiB ptmalloc buddy pinheap
declare -A sum=() count=()
for seed in $(seq 1 "$seeds"); do
  peak=$(field "$(job ptmalloc 1024 workload "$seed")" peak_live)
  [ -n "$peak" ] || continue
  line=$(printf '%-5s %9.1f' "$seed" "$(awk -v p="$peak" -v m=$MiB 'BEGIN { print p / m }')")
  for who in ptmalloc buddy pinheap; do
    lo=$((peak / MiB)) hi=$((2 * peak / MiB + 8))
    if [ "$quick" = 1 ]; then
      if completes "$who" "$hi" "$seed"; then h=$hi; else h=; fi
      [ -n "$h" ] || [ "$who" != pinheap ] || echo "pinheap did not complete seed $seed in $hi MiB" >>"$tmp/failed"
    else
      while ! completes "$who" "$hi" "$seed"; do
        lo=$hi hi=$((hi * 2))
        [ "$hi" -le $((16 * peak / MiB)) ] || { hi=; break; }
      done
      while [ -n "$hi" ] && [ $((hi - lo)) -gt 1 ]; do
        mid=$(((lo + hi) / 2))
        if completes "$who" "$mid" "$seed"; then hi=$mid; else lo=$mid; fi
      done
      h=$hi
    fi
    if [ -n "$h" ]; then
      hm=$(awk -v h="$h" -v p="$peak" -v m=$MiB 'BEGIN { printf "%.3f", h * m / p }')
      sum[$who]=$(awk -v a="${sum[$who]:-0}" -v b="$hm" 'BEGIN { print a + b }')
      count[$who]=$((${count[$who]:-0} + 1))
      line+=$(printf ' %9s (%4s)' "$hm" "$h")
    else
      line+=$(printf ' %16s' "none")
    fi
  done
  echo "$line"
done
printf '%-15s' "mean (found)"
for who in ptmalloc buddy pinheap; do
  mean=$(awk -v a="${sum[$who]:-0}" -v n="${count[$who]:-0}" \
    'BEGIN { if (n) printf "%.3f", a / n; else printf "none" }')
  printf ' %16s' "$mean"
done
echo
echo "(H/M, then the heap in MiB; pinheap's heap is the block PINHEAP_SHMEM_SIZE takes of the implementation's)"
if [ -s "$tmp/crashed" ]; then
  echo "runs that crashed instead of returning NULL (counted as not completing):"
  sort "$tmp/crashed" | sed 's/^/  /'
fi
if [ -s "$tmp/failed" ]; then
  echo "run_shmem.sh: FAILED:" >&2
  sed 's/^/  /' "$tmp/failed" >&2
  exit 1
fi
exit 0
