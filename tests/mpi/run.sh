#!/usr/bin/env bash
# Runs a test program under one MPI and removes the shared-memory files the
# run left in /dev/shm.
#
#   tests/mpi/run.sh <openmpi|mpich> <ranks> <program> [args...]
#
# The launcher is mpirun.<flavour>; Open MPI's one-sided component is
# PINHEAP_MPI_OSC (default pt2pt). The run is bounded by PINHEAP_MPI_TIMEOUT
# seconds (default 50, under the tests' ctest timeout, so that the cleanup
# still runs after a hang). Exits with the run's status.
set -uo pipefail

if [ "$#" -lt 3 ]; then
  sed -n '5p' "$0" >&2
  exit 2
fi
flavour=$1 np=$2
shift 2
limit=${PINHEAP_MPI_TIMEOUT:-50}
shm=/dev/shm
listing() { ls -A "$shm" 2>/dev/null | LC_ALL=C sort; }

before=$(listing)
seg=
case $flavour in
  openmpi)
    # Its shared-memory segments go to a directory of this run's own.
    seg=$(mktemp -d "$shm/pinheap-mpi.XXXXXX" 2>/dev/null || mktemp -d "${TMPDIR:-/tmp}/pinheap-mpi.XXXXXX")
    cmd=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun.openmpi -np "$np" --oversubscribe
      --mca osc "${PINHEAP_MPI_OSC:-pt2pt}" --mca btl_vader_backing_directory "$seg") ;;
  mpich)
    cmd=(mpirun.mpich -np "$np") ;;
  *)
    echo "run.sh: unknown MPI flavour '$flavour' (openmpi or mpich)" >&2
    exit 2 ;;
esac

timeout -k 5 "$limit" "${cmd[@]}" "$@"
rc=$?
[ "$rc" -eq 124 ] && echo "run.sh: the run did not end within ${limit} s" >&2
[ -n "$seg" ] && rm -rf "$seg"

# MPICH's (and UCX's) segments are unlinked as soon as every rank has them
# mapped; a run killed before that leaves them in /dev/shm. Remove those new
# since the start that no process maps (another run may be using its own).
if [ "$flavour" = mpich ]; then
  for f in $(LC_ALL=C comm -13 <(echo "$before") <(listing)); do
    case $f in
      mpich_shar_tmp* | ucx_shm_posix_*) ;;
      *) continue ;;
    esac
    grep -qsF "$shm/$f" /proc/[0-9]*/maps && continue
    echo "run.sh: removing $shm/$f, left by the run" >&2
    rm -f "$shm/$f"
  done
fi
exit "$rc"
