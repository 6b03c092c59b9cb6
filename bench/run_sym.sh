#!/usr/bin/env bash
# Symmetric allocation: pinheap_sym against OpenSHMEM's shmem_malloc (Open
# MPI's OSHMEM) with each of its memheap components, ptmalloc (dlmalloc, the
# default) and buddy. Every oshrun job measures both allocators, in the same
# processes, over symmetric heaps of the same size (see bench_sym_oshmem.c),
# and the table puts them side by side.
#
# usage: run_sym.sh [-n ranks] [-s seeds] [-q] [-b bindir] [BUILD_DIR]
#   BUILD_DIR  the CMake build directory (runner in BUILD_DIR/bench), or the
#       directory of the runner itself (default: this script's directory,
#       then build/bench beside it)
#   -n  processes per job (default 2)
#   -s  churn runs, with seeds 1..N (default 5)
#   -q  quick: the ptmalloc peer only (a smoke run)
# Exit status: 0 when every job completed and pinheap_sym completed each of
# the seed's sequences, 1 otherwise, 2 on bad usage.
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# programs, says what it would run, and exits (0) without running them.
set -u

ranks=2
seeds=5
bindir=""
components="ptmalloc buddy"
while getopts "n:s:qb:h" opt; do
  case $opt in
    n) ranks=$OPTARG ;;
    s) seeds=$OPTARG ;;
    q) components=ptmalloc ;;
    b) bindir=$OPTARG ;;
    *) sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || { echo "run_sym.sh: one BUILD_DIR at most" >&2; exit 2; }
[[ $ranks =~ ^[1-9][0-9]*$ && $seeds =~ ^[0-9]+$ ]] || { echo "run_sym.sh: bad -n $ranks or -s $seeds" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for d in "$bindir" "${1:+$1/bench}" "${1:-}" "$here" "$here/../build/bench"; do
  if [ -n "$d" ] && [ -x "$d/bench_sym_oshmem" ]; then bindir=$d; break; fi
done
runner=$bindir/bench_sym_oshmem
if [ ! -x "$runner" ]; then
  echo "run_sym.sh: bench_sym_oshmem not found (is oshcc installed? build with cmake first)" >&2
  exit 2
fi
command -v oshrun >/dev/null || { echo "run_sym.sh: no oshrun (Open MPI's OSHMEM)" >&2; exit 2; }
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_sym.sh: dry run: $runner under oshrun -np $ranks, memheap $components, $seeds churn seeds"
  exit 0
fi
root_flag=()
[ "$(id -u)" -eq 0 ] && root_flag=(--allow-run-as-root)

failed=0
out=$(mktemp "${TMPDIR:-/tmp}/run_sym.XXXXXX")
trap 'rm -f "$out"' EXIT

# job SCENARIO HEAP_MIB COMPONENT [SEED]: one oshrun job; its RESULT lines
# go to $out tagged with the component.
job() {
  local log
  if ! log=$(SHMEM_SYMMETRIC_HEAP_SIZE="$2M" timeout 180 oshrun "${root_flag[@]}" -np "$ranks" --oversubscribe \
      --mca osc '^rdma' --mca memheap "$3" "$runner" "$1" "$2" "$3" "${4:-12345}" 2>&1); then
    echo "run_sym.sh: FAILED: $1 $2 MiB with $3:" >&2
    printf '%s\n' "$log" | tail -20 >&2
    failed=1
  fi
  printf '%s\n' "$log" | sed -n "s/^RESULT /$3 /p" >> "$out"
}

for comp in $components; do
  job tiny 650 "$comp"
  job seq700 1200 "$comp"
  job seq1000 1050 "$comp"
  for s in $(seq 1 "$seeds"); do job churn 1024 "$comp" "$s"; done
  job speed 256 "$comp"
done

echo "== the seed's sequences ($ranks processes; outcome of each allocator in the same job)"
printf '%-9s %-9s %-22s %-40s\n' scenario heap peer "pinheap_sym | peer"
for sc in "tiny 650" "seq700 1200" "seq1000 1050"; do
  set -- $sc
  for comp in $components; do
    mine=$(awk -v c="$comp" -v s="$1" '$1 == c && $2 == s && $3 == "pinheap_sym" { sub("outcome=", "", $4); print $4 }' "$out")
    peer=$(awk -v c="$comp" -v s="$1" '$1 == c && $2 == s && $3 != "pinheap_sym" { sub("outcome=", "", $4); print $4 }' "$out")
    printf '%-9s %-9s %-22s %s | %s\n' "$1" "$2MiB" "shmem_malloc($comp)" "${mine:-?}" "${peer:-?}"
  done
done

echo
echo "== churn: array requests that failed in a 1024 MiB heap, live arrays kept <= 70% ($seeds seeds)"
awk '$2 == "churn" {
  delete v; for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  who = ($3 == "pinheap_sym") ? "pinheap_sym (run with " $1 ")" : $3
  req[who] += v["requests"]; fail[who] += v["failed"]
  if (v["first_failure_step"] >= 0) { nf[who]++; live[who] += v["live_MiB_at_first_failure"] }
  if (!(who in order)) order[who] = ++n
}
END {
  for (w in order) names[order[w]] = w
  printf "%-36s %9s %7s %s\n", "allocator", "requests", "failed", "mean live MiB at first failure"
  for (i = 1; i <= n; i++) { w = names[i]
    printf "%-36s %9d %7d %s\n", w, req[w], fail[w], nf[w] ? sprintf("%.1f (%d runs failed)", live[w] / nf[w], nf[w]) : "-" }
}' "$out"

echo
echo "== speed: microseconds per malloc+free pair, collective included; the local part: pinheap_sym with NOSYNC"
echo "   (median of 5 alternating runs per job)"
awk '$2 == "speed" {
  delete v; for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  key = $1 " " v["size"]; who = ($3 == "pinheap_sym") ? "mine" : ($3 == "pinheap_sym_nosync") ? "local" : "peer"
  t[key, who, ++c[key, who]] = v["us_per_pair"]; keys[key] = 1
}
function median(key, who,   n, i, j, a, x) {
  n = c[key, who]; for (i = 1; i <= n; i++) a[i] = t[key, who, i]
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
  return a[int((n + 1) / 2)]
}
END {
  printf "%-10s %9s %12s %12s %12s %s\n", "peer", "size", "pinheap_sym", "(local part)", "peer", "peer time / pinheap_sym time"
  for (k in keys) { split(k, p, " "); m = median(k, "mine"); q = median(k, "peer")
    printf "%-10s %9s %12.2f %12.2f %12.2f %.2f\n", p[1], p[2], m, median(k, "local"), q, (m > 0 ? q / m : 0) }
}' "$out" | { read -r header; echo "$header"; sort; }
if grep -E '^[a-z]+ (tiny|seq700|seq1000) pinheap_sym ' "$out" | grep -qv 'outcome=ok'; then
  echo "run_sym.sh: FAILED: pinheap_sym did not complete one of the seed's sequences" >&2
  failed=1
fi
exit "$failed"
