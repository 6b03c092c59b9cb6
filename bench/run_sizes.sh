#!/usr/bin/env bash
# How large a FIXED heap must be: records three Debian programs with
# `pinheap record` (sqlite3 on tests/preload/table.sql; python3 on
# tests/preload/dicts.py with PYTHONMALLOC=malloc, so that its small objects
# reach malloc too; sort --parallel=2 on 300,000 lines), generates two
# workloads with `pinheap gen` (pgas and server, seed 1), and prints
# `pinheap size` of each: for every policy, the smallest heap found, the
# size from which every probed heap completed, and H/M. Minutes: python3's
# trace has 11 million records, and the bump policy needs heaps of
# hundreds of GiB for the generated ones (reserved, never touched).
#
#   bench/run_sizes.sh [BUILD_DIR, default build]
#
# With PINHEAP_BENCH_DRY_RUN=1 it checks its programs, says what it would
# run, and exits (0) without running them.
set -euo pipefail
build=$(readlink -f "${1:-build}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pinheap=$build/pinheap
[ -x "$pinheap" ] && [ -e "$build/libpinheap-record.so" ] || { echo "run_sizes.sh: build first: no $pinheap" >&2; exit 2; }
for p in sqlite3 /usr/bin/python3 sort; do
  command -v "$p" > /dev/null || { echo "run_sizes.sh: $p not found (scripts/deps.sh installs it)" >&2; exit 2; }
done
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_sizes.sh: dry run: $pinheap record of sqlite3, python3, sort; gen pgas, server; size of each"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-sizes.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export PINHEAP_MODE=fixed PINHEAP_SIZE=2g
seq 1 300000 | awk '{print ($1 * 7919) % 100003, $1}' > "$tmp/sort.in"
"$pinheap" record -o "$tmp/sqlite3.trace" -- sh -c "exec sqlite3 :memory: < '$here/../tests/preload/table.sql'" > /dev/null
PYTHONMALLOC=malloc "$pinheap" record -o "$tmp/python3.trace" -- /usr/bin/python3 "$here/../tests/preload/dicts.py" \
  > /dev/null
"$pinheap" record -o "$tmp/sort.trace" -- sort --parallel=2 -S 50M "$tmp/sort.in" > /dev/null
"$pinheap" gen pgas --seed 1 -o "$tmp/pgas.trace"
"$pinheap" gen server --seed 1 -o "$tmp/server.trace"
for t in sqlite3 python3 sort pgas server; do
  echo
  "$pinheap" size "$tmp/$t.trace"
done
