#!/usr/bin/env bash
# The comm benchmarks: comm_mpi (one-sided put and get into pinheap memory
# against MPI_Win_allocate and MPI_Alloc_mem) under each MPI built, at 2
# ranks, and reg_cost (creating FIXED heaps with each provider) at 1 rank.
#
#   bench/run_comm.sh [build_dir] [rounds] [runs]
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
[ -d "$bench" ] || { echo "run_comm.sh: no $bench (build first)" >&2; exit 2; }
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
