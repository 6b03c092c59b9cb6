#!/usr/bin/env bash
# Placement compared: the smallest FIXED heap that completes generated
# workloads, over their peak live bytes (H/M), for each placement policy.
# Generates `pinheap gen KIND --seed S` for the kinds pgas, server and grow
# (grow with --steps 1000) and seeds 1..SEEDS, runs `pinheap size` on each
# trace for each policy (one arena, a scan of 10 probes above the
# bisection), and prints per kind and policy the mean over seeds of the
# smallest completing heap's H/M and of the size from which every larger
# probe completed (the all-larger bound), and that bound's largest seed.
# Minutes: about 30 s of CPU per trace and policy.
#
#   bench/run_placement.sh [-s SEEDS, default 5] [-p "POLICIES", default
#                          "two-ended ring first-fit"] [-j JOBS, default 2]
#                          [BUILD_DIR, default build]
#
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and programs, says
# what it would run, and exits (0) without running them.
set -euo pipefail
seeds=5 policies="two-ended ring first-fit" jobs=2
while getopts s:p:j: o; do
  case $o in
  s) seeds=$OPTARG ;;
  p) policies=$OPTARG ;;
  j) jobs=$OPTARG ;;
  *) echo "usage: run_placement.sh [-s SEEDS] [-p POLICIES] [-j JOBS] [BUILD_DIR]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build=$(readlink -f "${1:-build}")
pinheap=$build/pinheap
[ -x "$pinheap" ] || { echo "run_placement.sh: build first: no $pinheap" >&2; exit 2; }
command -v python3 > /dev/null || { echo "run_placement.sh: python3 not found" >&2; exit 2; }
[[ $seeds =~ ^[1-9][0-9]*$ && $jobs =~ ^[1-9][0-9]*$ ]] || { echo "run_placement.sh: -s and -j take counts" >&2; exit 2; }
names=" $("$pinheap" size --help | sed -n 's/.*placement policy (\([^)]*\)).*/\1/p' | tr -d ,) "
for p in $policies; do
  [[ $names == *" $p "* ]] || { echo "run_placement.sh: unknown policy $p (the library has:$names)" >&2; exit 2; }
done
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  echo "run_placement.sh: dry run: gen pgas, server, grow, seeds 1-$seeds; size under $policies; $jobs jobs"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-placement.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for k in pgas server grow; do
  for s in $(seq 1 "$seeds"); do
    steps=()
    [ "$k" = grow ] && steps=(--steps 1000)
    "$pinheap" gen "$k" --seed "$s" "${steps[@]}" -o "$tmp/$k-$s.trace"
    for p in $policies; do echo "$k $s $p"; done
  done
done > "$tmp/runs"
export pinheap tmp
xargs -P "$jobs" -L 1 bash -c '"$pinheap" size "$tmp/$0-$1.trace" --policy "$2" --arenas 1 --scan 10 --json \
  > "$tmp/$0-$1-$2.json" 2> /dev/null || true' < "$tmp/runs"
python3 - "$tmp" "$seeds" "$policies" <<'PY'
import json, sys
tmp, seeds, policies = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
print("%-7s %-10s %5s %14s %18s %12s" % ("kind", "policy", "seeds", "mean H/M", "mean all-larger", "max seed"))
for k in ("pgas", "server", "grow"):
    for p in policies:
        got = []
        for s in range(1, seeds + 1):
            try:
                d = json.load(open("%s/%s-%d-%s.json" % (tmp, k, s, p)))["policies"][0]
                got.append((d["smallest_hm"], d["every_probe_from_hm"]))
            except (OSError, ValueError, KeyError, IndexError):
                pass
        if len(got) < seeds:
            print("%-7s %-10s %d of %d seeds found no completing heap" % (k, p, seeds - len(got), seeds))
        if got:
            print("%-7s %-10s %5d %14.3f %18.3f %12.3f" % (k, p, len(got), sum(a for a, _ in got) / len(got),
                                                     sum(b for _, b in got) / len(got), max(b for _, b in got)))
PY
