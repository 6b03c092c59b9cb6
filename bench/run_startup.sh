#!/usr/bin/env bash
# Start-up cost of libpinheap-preload.so: the CPU time (user + system) of
#   true    N execs of /bin/true, each under the library (the loop's own
#           shell without it)
#   script  bench/startup_script.sh (1,000 execs of /bin/true, expr,
#           basename, tr and date) with the shell and every command under
#           the library
# against the same runs without it (glibc's malloc), in each heap mode.
# Runs K times per configuration, alternating them, and prints the median
# CPU time and its ratio to glibc's; with a second library (an older build),
# its column too, from runs made in the same rounds.
#
# usage: run_startup.sh [-k reps] [-n execs] [-m modes] LIB [LIB2]
#   LIB   libpinheap-preload.so, or the build directory that holds it
#   LIB2  another build of it, measured side by side (e.g. before a change)
#   -k    runs per configuration; the median is reported (default 5)
#   -n    execs of /bin/true in the true workload (default 500)
#   -m    modes, a comma list of fixed, dynamic, simple (default all three)
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# libraries, says what it would run, and stops.
set -u
reps=5 n=500 modes=fixed,dynamic,simple
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while getopts "k:n:m:h" opt; do
  case $opt in
    k) reps=$OPTARG ;;
    n) n=$OPTARG ;;
    m) modes=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[[ $reps =~ ^[1-9][0-9]*$ && $n =~ ^[1-9][0-9]*$ ]] || usage
libs=()
for l in "$@"; do
  [ -d "$l" ] && l=$l/libpinheap-preload.so
  [ -f "$l" ] || { echo "run_startup.sh: no library $l" >&2; exit 2; }
  libs+=("$(readlink -f "$l")")
done
here=$(cd "$(dirname "$0")" && pwd)
script=$here/startup_script.sh
IFS=, read -r -a mlist <<< "$modes"
for mode in "${mlist[@]}"; do
  [[ $mode =~ ^(fixed|dynamic|simple)$ ]] || { echo "run_startup.sh: bad mode $mode" >&2; exit 2; }
done
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_startup.sh: dry run: ${libs[*]} against glibc, modes $modes, $reps runs each, $n execs of /bin/true" \
       "and $script"
  exit 0
fi

# CPU milliseconds of the children of one run: bash's `times` after it.
cpu_ms() { # workload lib(or "") mode
  local out
  out=$(bash -c '
    w=$1 lib=$2 mode=$3 n=$4 script=$5
    if [ "$w" = true ]; then
      for ((i = 0; i < n; i++)); do
        if [ -n "$lib" ]; then PINHEAP_MODE=$mode LD_PRELOAD=$lib /bin/true; else /bin/true; fi
      done
    elif [ -n "$lib" ]; then
      PINHEAP_MODE=$mode LD_PRELOAD=$lib bash "$script"
    else
      bash "$script"
    fi
    times' _ "$1" "$2" "$3" "$n" "$script" | tail -1) || return 1
  # "0m0.123s 0m0.045s": the children's user and system time.
  awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.0f", t * 1000 }' <<< "$out"
}

samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
configs=(glibc)
for ((j = 0; j < ${#libs[@]}; j++)); do configs+=("lib$j"); done
for w in true script; do
  for mode in "${mlist[@]}"; do
    for ((r = 0; r < reps; r++)); do
      for c in "${configs[@]}"; do
        lib=""
        [ "$c" = glibc ] || lib=${libs[${c#lib}]}
        echo "$w $mode $c $(cpu_ms "$w" "$lib" "$mode")" >> "$samples"
      done
    done
  done
done

median() { awk -v w="$1" -v m="$2" -v c="$3" '$1 == w && $2 == m && $3 == c { print $4 }' "$samples" | sort -n |
  awk '{ v[n++] = $1 } END { print n ? (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0 }'; }

echo "start-up CPU time (user + system, ms), median of $reps; true: $n execs of /bin/true; script: 1,000 execs"
for ((j = 0; j < ${#libs[@]}; j++)); do echo "lib$j: ${libs[$j]}"; done
printf '%-7s %-8s %8s' workload mode glibc
for ((j = 0; j < ${#libs[@]}; j++)); do printf ' %8s %8s' "lib$j" "ratio"; done
echo
for w in true script; do
  for mode in "${mlist[@]}"; do
    g=$(median "$w" "$mode" glibc)
    printf '%-7s %-8s %8s' "$w" "$mode" "$g"
    for ((j = 0; j < ${#libs[@]}; j++)); do
      v=$(median "$w" "$mode" "lib$j")
      printf ' %8s %8s' "$v" "$(awk -v a="$v" -v b="$g" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    done
    echo
  done
done
