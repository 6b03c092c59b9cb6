#!/usr/bin/env bash
# The comm benchmarks: comm_mpi (one-sided put and get into pinheap memory
# against MPI_Win_allocate and MPI_Alloc_mem) under each MPI built, at 2
# ranks, and reg_cost (creating FIXED heaps with each provider) at 1 rank.
#
#   bench/run_comm.sh [build_dir] [rounds] [runs]
#
# With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments and finds its
# programs, says what it would run, and exits (0) without running them.
#
# Uses the MPI tests' launcher (tests/mpi/run.sh), which bounds each run and
# removes the shared-memory files it leaves.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$here/..
[ -f "$root/tests/mpi/run.sh" ] || root=$(cd "$here/../.." && pwd) # run from build/bench
build=${1:-build}
rounds=${2:-5}
runs=${3:-5}
bench=$build/bench
[[ $# -le 3 && $rounds =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ ]] ||
  { sed -n '6p' "$0" >&2; echo "run_comm.sh: rounds and runs > 0" >&2; exit 2; }
[ -d "$bench" ] || { echo "run_comm.sh: no $bench (build first)" >&2; exit 2; }
if [ -n "${PINHEAP_BENCH_DRY_RUN:-}" ]; then
  found=$(ls "$bench"/comm_mpi_* "$bench"/reg_cost_* 2>/dev/null) || { echo "run_comm.sh: nothing built" >&2; exit 2; }
  echo "run_comm.sh: dry run:" $found "with $rounds rounds, $runs runs"
  exit 0
fi
export PINHEAP_MPI_TIMEOUT=${PINHEAP_MPI_TIMEOUT:-300}
export FI_TCP_IFACE=${FI_TCP_IFACE:-lo}

ran=0
for flavour in openmpi mpich; do
  exe=$bench/comm_mpi_$flavour
  [ -x "$exe" ] || continue
  echo "== comm_mpi under $flavour, 2 ranks, $rounds rounds"
  bash "$root/tests/mpi/run.sh" "$flavour" 2 "$exe" "$rounds"
  ran=1
done
for flavour in openmpi mpich; do
  exe=$bench/reg_cost_$flavour
  [ -x "$exe" ] || continue
  echo "== reg_cost under $flavour, 1 rank, $runs runs"
  bash "$root/tests/mpi/run.sh" "$flavour" 1 "$exe" "$runs"
  ran=1
  break
done
[ "$ran" = 1 ] || { echo "run_comm.sh: no comm benchmark built (no MPI found)" >&2; exit 2; }
