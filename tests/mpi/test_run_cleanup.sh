#!/usr/bin/env bash
# run.sh's cleanup after an MPICH run removes the segments the run left in
# /dev/shm that no process uses, and keeps those another process holds open
# but has not mapped yet (a job running beside it, between creating its
# segment and mapping it).
set -uo pipefail
run=$(dirname "${BASH_SOURCE[0]}")/run.sh
command -v mpirun.mpich > /dev/null || { echo "mpirun.mpich not found: skipped"; exit 77; }
tag=pinheap-cleanup-$$
held=/dev/shm/ucx_shm_posix_$tag.held left=/dev/shm/ucx_shm_posix_$tag.left
go=$(mktemp "${TMPDIR:-/tmp}/$tag.go.XXXXXX") opened=$(mktemp "${TMPDIR:-/tmp}/$tag.opened.XXXXXX")
rm -f "$go" "$opened"
holder=
trap '[ -n "$holder" ] && kill "$holder" 2>/dev/null; rm -f "$held" "$left" "$go" "$opened"' EXIT
# Once the run has started, the holder creates the held segment open (as a
# job's UCX does: never a moment when it exists and no process has it; a
# run.sh of another test beside this one would remove it in such a moment),
# and keeps it open.
(
  while [ ! -e "$go" ]; do sleep 0.05; done
  exec 3> "$held"
  touch "$opened"
  sleep 60
) &
holder=$!
# The run makes the left segment and ends once the holder has the other.
PINHEAP_MPI_TIMEOUT=50 bash "$run" mpich 1 bash -c \
  "touch '$left' '$go'; until [ -e '$opened' ]; do sleep 0.05; done" 2> /dev/null
failed=0
if [ -e "$held" ]; then echo "ok: a segment another process holds open is kept"
else echo "FAILED: run.sh removed $held, which another process holds open"; failed=1; fi
if [ -e "$left" ]; then echo "FAILED: run.sh kept $left, which no process uses"; failed=1
else echo "ok: a segment no process uses is removed"; fi
exit "$failed"
