#!/usr/bin/env bash
# Runs a test program under one MPI and removes the shared-memory files the
# run left in /dev/shm.
#
#   tests/mpi/run.sh <openmpi|mpich|oshmem> <ranks> <program> [args...]
#   tests/mpi/run.sh --limit <ranks>     (prints the limit a run would have)
#
# The launcher is mpirun.<flavour>, or for OpenSHMEM programs (oshmem)
# Open MPI's oshrun; Open MPI's one-sided component is PINHEAP_MPI_OSC
# (default pt2pt; oshmem: ^rdma). The run is bounded by PINHEAP_MPI_TIMEOUT
# seconds when that is set. Otherwise the limit grows with how many
# processes will share each core: 40 s times (the load average of the last
# minute + ranks) / online cores, at least 50 s, and, under ctest, at most
# its timeout (PINHEAP_MPI_CTEST_TIMEOUT, set by the tests' CMake files)
# less 10 s, so that the cleanup still runs after a hang. PINHEAP_MPI_LOAD
# and PINHEAP_MPI_CORES stand for the machine's load and cores (for tests
# of the rule). Under Open MPI, PINHEAP_MPI_OUTPUT=DIR also writes each
# rank's stdout and stderr to DIR/1/rank.N/ (the launcher's merged stream
# interleaves the ranks' lines in chunks, cut anywhere, when they write
# much at once). Exits with the run's status.
set -uo pipefail

usage() {
  sed -n '5,6p' "$0" >&2
  exit 2
}

# The limit of a run of $1 ranks, in whole seconds.
limit_for() {
  if [ -n "${PINHEAP_MPI_TIMEOUT:-}" ]; then
    echo "$PINHEAP_MPI_TIMEOUT"
    return
  fi
  local load cores
  load=${PINHEAP_MPI_LOAD:-$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)}
  cores=${PINHEAP_MPI_CORES:-$(nproc 2>/dev/null || echo 1)}
  awk -v load="$load" -v ranks="$1" -v cores="$cores" -v ceiling="${PINHEAP_MPI_CTEST_TIMEOUT:-0}" 'BEGIN {
    if (cores < 1) cores = 1
    t = 40 * (load + ranks) / cores
    t = t == int(t) ? t : int(t) + 1
    if (t < 50) t = 50
    if (ceiling > 0 && t > ceiling - 10) t = ceiling - 10
    print t
  }'
}

if [ "${1:-}" = --limit ]; then
  [ "$#" -eq 2 ] || usage
  limit_for "$2"
  exit 0
fi
[ "$#" -lt 3 ] && usage
flavour=$1 np=$2
shift 2
limit=$(limit_for "$np")
shm=/dev/shm
listing() { ls -A "$shm" 2>/dev/null | LC_ALL=C sort; }

before=$(listing)
seg=
case $flavour in
  openmpi | oshmem)
    # Its shared-memory segments go to a directory of this run's own.
    seg=$(mktemp -d "$shm/pinheap-mpi.XXXXXX" 2>/dev/null || mktemp -d "${TMPDIR:-/tmp}/pinheap-mpi.XXXXXX")
    # OpenSHMEM programs: Open MPI's oshrun, whose shmem_finalize crashes
    # with the one-sided component rdma, and with pt2pt alone.
    launcher=mpirun.openmpi osc=${PINHEAP_MPI_OSC:-pt2pt}
    [ "$flavour" = oshmem ] && launcher=oshrun osc=${PINHEAP_MPI_OSC:-^rdma}
    cmd=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$launcher" -np "$np" --oversubscribe
      --mca osc "$osc" --mca btl_vader_backing_directory "$seg")
    [ -n "${PINHEAP_MPI_OUTPUT:-}" ] && cmd+=(--output-filename "$PINHEAP_MPI_OUTPUT") ;;
  mpich)
    cmd=(mpirun.mpich -np "$np") ;;
  *)
    echo "run.sh: unknown MPI flavour '$flavour' (openmpi, mpich or oshmem)" >&2
    exit 2 ;;
esac

timeout -k 5 "$limit" "${cmd[@]}" "$@"
rc=$?
[ "$rc" -eq 124 ] && echo "run.sh: the run did not end within ${limit} s" >&2
[ -n "$seg" ] && rm -rf "$seg"

# MPICH's (and UCX's) segments are unlinked as soon as every rank has them
# mapped; a run killed before that leaves them in /dev/shm. Remove those new
# since the start that no process maps or holds open: another run (an
# OpenSHMEM job over UCX, say) may be using its own, and holds it open
# between creating and mapping it.
in_use() {
  grep -qsF "$shm/$1" /proc/[0-9]*/maps && return 0
  [ -n "$(find /proc/[0-9]*/fd -lname "$shm/$1" -print -quit 2>/dev/null)" ]
}
if [ "$flavour" = mpich ]; then
  for f in $(LC_ALL=C comm -13 <(echo "$before") <(listing)); do
    case $f in
      mpich_shar_tmp* | ucx_shm_posix_*) ;;
      *) continue ;;
    esac
    in_use "$f" && continue
    echo "run.sh: removing $shm/$f, left by the run" >&2
    rm -f "$shm/$f"
  done
fi
exit "$rc"
