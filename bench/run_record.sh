#!/usr/bin/env bash
# The cost of recording: each program run K times under libpinheap-preload.so
# alone and under libpinheap-record.so in front of it (as `pinheap record`
# runs it, without the tool's summary of the trace afterwards), alternated,
# in a FIXED heap; prints the median wall time of each, their ratio, the
# records written and the trace's bytes per record.
#
# usage: run_record.sh [-k reps] [BUILD_DIR]
#   BUILD_DIR  the CMake build directory (default build)
#   -k  runs of each, alternated; the median is reported (default 5)
#
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and programs, says
# what it would run, and exits (0) without running them.
set -euo pipefail
reps=5
while getopts k: opt; do
  case $opt in
    k) reps=$OPTARG ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build=$(readlink -f "${1:-build}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pinheap=$build/pinheap preload=$build/libpinheap-preload.so recorder=$build/libpinheap-record.so
[ -x "$pinheap" ] && [ -e "$preload" ] && [ -e "$recorder" ] ||
  { echo "run_record.sh: no $pinheap, $preload or $recorder: build first" >&2; exit 2; }
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "run_record.sh: -k needs a positive count" >&2; exit 2; }
for p in sqlite3 /usr/bin/python3 sort bc; do
  command -v "$p" > /dev/null || { echo "run_record.sh: $p not found" >&2; exit 2; }
done
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_record.sh: dry run: sqlite3, python3 and sort, $reps times each under $preload and under $recorder"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-record-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
seq 1 1000000 | awk '{print ($1 * 7919) % 100003, $1}' > "$tmp/sort.in"
export PINHEAP_MODE=fixed PINHEAP_SIZE=2g

# seconds COMMAND...: the wall time of one run, in seconds.
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# recorded COMMAND...: as `pinheap record -o $tmp/t` runs it.
recorded() {
  PINHEAP_RECORD_FILE=$tmp/t LD_PRELOAD="$recorder $preload" sh -c 'PINHEAP_RECORD_PID=$$ exec "$@"' sh "$@"
}

printf '%-22s %10s %10s %8s %10s %13s\n' program "preload s" "record s" ratio records "bytes/record"
run() {
  local label=$1; shift
  : > "$tmp/a"; : > "$tmp/b"
  for ((i = 0; i < reps; i++)); do
    seconds env LD_PRELOAD="$preload" "$@" >> "$tmp/a"
    seconds recorded "$@" >> "$tmp/b"
  done
  local a b events bytes
  a=$(median < "$tmp/a") b=$(median < "$tmp/b")
  events=$("$pinheap" info "$tmp/t" | awk '/records:/ { print $2 }' | tr -d :)
  bytes=$(stat -c %s "$tmp/t")
  printf '%-22s %10.3f %10.3f %8.2f %10s %13.1f\n' "$label" "$a" "$b" "$(echo "$b / $a" | bc -l)" "$events" \
    "$(echo "$bytes / $events" | bc -l)"
}
run "sqlite3 table.sql" sh -c "exec sqlite3 :memory: < '$here/../tests/preload/table.sql'"
run "python3 dicts.py" /usr/bin/python3 "$here/../tests/preload/dicts.py"
run "sort --parallel=2" sort --parallel=2 -S 50M "$tmp/sort.in"
