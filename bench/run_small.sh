#!/usr/bin/env bash
# Small-object throughput: pinheap FIXED vs jemalloc (as malloc) vs mimalloc
# (exclusive arena). Runs every runner K times per thread count, alternating
# the allocators, and prints the median of each as a table.
#
# One op is one malloc or one free (a round of the workload is one free and
# one malloc, 2 ops); ops/s are summed over the threads. See small_bench.h.
#
# usage: run_small.sh [-s seed] [-x scale] [-k reps] [-t threads] [-n slots]
#                     [-z min:max] [-m region_mib] [-T budget_s] [-b bindir]
#                     [-d debug] [-v] [BUILD_DIR]
#   BUILD_DIR  the CMake build directory (runners in BUILD_DIR/bench), or the
#       directory of the runners itself; `make bench` passes "build"
#   -s  seed for every run (default 12345)
#   -x  scale: rounds per thread = 5,000,000 x scale (default 1; may be 0.1)
#   -k  runs per allocator and thread count; the median is reported (default 5)
#   -t  thread counts: a comma list ("1,2", the default) or "all" (1..nproc)
#   -n  live slots per thread (default 1000)
#   -z  block sizes in bytes, MIN:MAX, decimal, 1 <= MIN <= MAX <= 67108864
#       (64 MiB), passed to every runner as -a MIN -b MAX (default 16:1024).
#       Only 2 bytes of a block are written, but slots x threads x MAX must
#       stay well under the region (-m) for pinheap and mimalloc
#   -m  MiB of the pinheap region and of the mimalloc arena (default 1024)
#   -T  time budget in seconds (default 50): no run starts after it is spent,
#       and a run still going when it is spent (5 s grace at least) is killed
#       and counted as failed; the whole script ends within about budget + 7 s
#   -b  directory of the bench_small_* runners (default: this script's
#       directory, then build/bench and ../build/bench beside it)
#   -d  also the pinheap runner with PINHEAP_DEBUG=debug (1: every debugging
#       aid; canary; poison), in turn with the others, and the ratio of the
#       two pinheap runs
#   -v  print every sample, not only the medians
# Exit status: 0 when every run passed its checks, 1 when one failed, 2 on
# bad usage or missing runners.
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# programs, says what it would run, and exits (0) without running them.
set -u

seed=12345
scale=1
reps=5
threads="1,2"
slots=1000
zrange=""
size_min=16
size_max=1024
region=1024
budget=50
bindir=""
verbose=0
debug=""
base_rounds=5000000

usage() { sed -n '2,/^# bad usage/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

builddir=""
parse_opts() {
  local opt
  OPTIND=1
  while getopts "s:x:k:t:n:z:m:T:b:d:vh" opt; do
    case $opt in
      s) seed=$OPTARG ;;
      x) scale=$OPTARG ;;
      k) reps=$OPTARG ;;
      t) threads=$OPTARG ;;
      n) slots=$OPTARG ;;
      z) zrange=$OPTARG ;;
      m) region=$OPTARG ;;
      T) budget=$OPTARG ;;
      b) bindir=$OPTARG ;;
      d) debug=$OPTARG ;;
      v) verbose=1 ;;
      h) usage 0 ;;
      *) usage ;;
    esac
  done
}
# Options, then at most one BUILD_DIR, then (also accepted) more options.
parse_opts "$@"
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
  builddir=$1
  shift
  parse_opts "$@"
  shift $((OPTIND - 1))
fi
[ $# -eq 0 ] || usage
if [ -n "$builddir" ] && [ -z "$bindir" ]; then
  if [ -x "$builddir/bench/bench_small_jemalloc" ]; then
    bindir=$builddir/bench
  elif [ -x "$builddir/bench_small_jemalloc" ]; then
    bindir=$builddir
  else
    echo "run_small.sh: no bench_small_* runners in $builddir/bench or $builddir; build first" >&2
    exit 2
  fi
fi

isnum() { [[ $1 =~ ^[0-9]+$ ]]; }
isnum "$reps" && [ "$reps" -ge 1 ] || { echo "run_small.sh: bad -k $reps" >&2; exit 2; }
isnum "$budget" && [ "$budget" -ge 1 ] || { echo "run_small.sh: bad -T $budget" >&2; exit 2; }
[[ $scale =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "run_small.sh: bad -x $scale" >&2; exit 2; }
size_args=()
if [ -n "$zrange" ]; then
  if [[ ! $zrange =~ ^([0-9]{1,18}):([0-9]{1,18})$ ]]; then
    echo "run_small.sh: bad -z $zrange (want MIN:MAX, decimal bytes)" >&2; exit 2
  fi
  # Strip leading zeros so that bash does not read the numbers as octal.
  size_min=$((10#${BASH_REMATCH[1]}))
  size_max=$((10#${BASH_REMATCH[2]}))
  if ((size_min < 1 || size_min > size_max || size_max > 67108864)); then
    echo "run_small.sh: bad -z $zrange (need 1 <= MIN <= MAX <= 67108864)" >&2; exit 2
  fi
  size_args=(-a "$size_min" -b "$size_max")
fi
rounds=$(awk -v b="$base_rounds" -v s="$scale" 'BEGIN { r = int(b * s); if (r < 1) r = 1; printf "%d", r }')

if [ "$threads" = all ]; then
  threads=$(seq -s, 1 "$(nproc)")
fi
IFS=, read -r -a tlist <<< "$threads"
for t in "${tlist[@]}"; do
  isnum "$t" && [ "$t" -ge 1 ] || { echo "run_small.sh: bad thread count '$t'" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$bindir" ]; then
  for d in "$here" "$here/../build/bench" "$here/build/bench"; do
    if [ -x "$d/bench_small_jemalloc" ]; then bindir=$d; break; fi
  done
fi
if [ -z "$bindir" ]; then
  echo "run_small.sh: no bench_small_* runners found; build first, or pass -b DIR" >&2
  exit 2
fi

allocs=(pinheap jemalloc mimalloc)
declare -A present
# pinheap-debug: the pinheap runner with every debugging aid.
runner() { if [ "$1" = pinheap-debug ]; then echo "$bindir/bench_small_pinheap"; else echo "$bindir/bench_small_$1"; fi; }
[ -n "$debug" ] && allocs+=(pinheap-debug)
for a in "${allocs[@]}"; do
  if [ -x "$(runner "$a")" ]; then
    present[$a]=1
  else
    present[$a]=0
    echo "run_small.sh: $(runner "$a") not built; its column shows n/a" >&2
  fi
done

if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_small.sh: dry run: ${allocs[*]} from $bindir, threads $threads, $reps runs each," \
       "$rounds rounds/thread, sizes ${size_min}..${size_max} B, $slots slots"
  exit 0
fi
echo "small-object throughput: seed=$seed slots/thread=$slots rounds/thread=$rounds" \
     "sizes=${size_min}..${size_max} B reps=$reps (median) region=${region} MiB"
echo "runners: $bindir"
echo "one op = one malloc or one free (a round = free + malloc = 2 ops); ops/s summed over threads"

samples=$(mktemp)
errlog=$(mktemp)
trap 'rm -f "$samples" "$errlog"' EXIT
status=0
start=$SECONDS
out_of_time=0

for t in "${tlist[@]}"; do
  for ((r = 1; r <= reps; r++)); do
    # Alternate the order from one repetition to the next as well.
    if ((r % 2)); then order=("${allocs[@]}"); else order=(); for a in "${allocs[@]}"; do order=("$a" "${order[@]}"); done; fi
    for a in "${order[@]}"; do
      [ "${present[$a]}" = 1 ] || continue
      left=$((budget - (SECONDS - start)))
      if ((left <= 0)); then out_of_time=1; break 3; fi
      ((left >= 5)) || left=5
      dbg=0
      [ "$a" = pinheap-debug ] && dbg=$debug
      line=$(PINHEAP_DEBUG=$dbg timeout -k 2 "$left" "$(runner "$a")" -q -t "$t" -r "$rounds" \
             -n "$slots" -s "$seed" -m "$region" "${size_args[@]}" 2>>"$errlog")
      rc=$?
      ops=$(printf '%s\n' "$line" | sed -n 's/^RESULT .* ops_per_s=\([0-9]*\).*/\1/p')
      if [ $rc -ne 0 ] || [ -z "$ops" ]; then
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="killed after ${left}s, the time budget"; else why="exit $rc"; fi
        echo "run_small.sh: $a -t $t FAILED ($why)" >&2
        echo "$a $t FAIL" >> "$samples"
        status=1
      else
        echo "$a $t $ops" >> "$samples"
        [ $verbose = 1 ] && echo "  sample: $a threads=$t ops/s=$ops"
      fi
    done
  done
done
if [ -s "$errlog" ]; then
  echo "--- runner errors ---" >&2
  cat "$errlog" >&2
fi
if [ $out_of_time = 1 ]; then
  echo "run_small.sh: time budget of ${budget}s spent; later runs skipped (medians of fewer runs)" >&2
fi

# Median per (allocator, threads); FAIL when any run of the cell failed.
median() { # alloc threads -> median ops/s, FAIL, or n/a; also the sample count
  awk -v a="$1" -v t="$2" '
    $1 == a && $2 == t { if ($3 == "FAIL") fail = 1; else v[n++] = $3 }
    END {
      if (fail) { print "FAIL 0"; exit }
      if (n == 0) { print "n/a 0"; exit }
      for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      m = (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
      printf "%.0f %d\n", m, n
    }' "$samples"
}

echo
printf '%7s  %15s  %15s  %15s  %16s  %16s' threads "pinheap Mops/s" "jemalloc Mops/s" \
  "mimalloc Mops/s" "pinheap/jemalloc" "pinheap/mimalloc"
[ -n "$debug" ] && printf '  %15s  %13s' "debug Mops/s" "debug/pinheap"
echo
for t in "${tlist[@]}"; do
  read -r p pn < <(median pinheap "$t")
  read -r j jn < <(median jemalloc "$t")
  read -r m mn < <(median mimalloc "$t")
  read -r d dn < <(median pinheap-debug "$t")
  awk -v t="$t" -v p="$p" -v j="$j" -v m="$m" -v d="$d" -v pn="$pn" -v jn="$jn" -v mn="$mn" -v dn="$dn" \
      -v k="$reps" -v debug="${debug:+1}" '
    function num(x) { return x ~ /^[0-9.]+$/ }
    function cell(x, n) { if (!num(x)) return x; return sprintf("%.2f%s", x / 1e6, n < k ? "*" : "") }
    function ratio(x, y) { if (!num(x) || !num(y) || y == 0) return "n/a"; return sprintf("%.3f", x / y) }
    BEGIN {
      printf "%7d  %15s  %15s  %15s  %16s  %16s", t, cell(p, pn), cell(j, jn), cell(m, mn),
             ratio(p, j), ratio(p, m)
      if (debug) printf "  %15s  %13s", cell(d, dn), ratio(d, p)
      printf "\n"
    }'
done
if grep -q . "$samples" && [ $out_of_time = 1 ]; then
  echo "(* = median of fewer than $reps runs)"
fi
echo "elapsed: $((SECONDS - start)) s"
exit $status
