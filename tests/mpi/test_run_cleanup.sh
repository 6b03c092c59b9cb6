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
opened=$(mktemp "${TMPDIR:-/tmp}/$tag.XXXXXX")
rm -f "$opened"
holder=
trap '[ -n "$holder" ] && kill "$holder" 2>/dev/null; rm -f "$held" "$left" "$opened"' EXIT
# The holder opens the held segment once the run made it, and keeps it open.
(
  while [ ! -e "$held" ]; do sleep 0.05; done
  exec 3< "$held"
  touch "$opened"
  sleep 60
) &
holder=$!
# The run makes both segments and ends once the holder has the one open.
PINHEAP_MPI_TIMEOUT=50 bash "$run" mpich 1 bash -c \
  "touch '$left' '$held'; until [ -e '$opened' ]; do sleep 0.05; done" 2> /dev/null
failed=0
if [ -e "$held" ]; then echo "ok: a segment another process holds open is kept"
else echo "FAILED: run.sh removed $held, which another process holds open"; failed=1; fi
if [ -e "$left" ]; then echo "FAILED: run.sh kept $left, which no process uses"; failed=1
else echo "ok: a segment no process uses is removed"; fi
exit "$failed"
