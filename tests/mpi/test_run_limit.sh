#!/usr/bin/env bash
# The limit run.sh puts on a run: 40 s per process per core, counting the
# machine's load, at least 50 s, under ctest's timeout less 10 s when ctest
# runs it; PINHEAP_MPI_TIMEOUT overrides it. Load and cores are given
# (PINHEAP_MPI_LOAD, PINHEAP_MPI_CORES), so that the rule is what is tested.
set -uo pipefail
run=$(dirname "${BASH_SOURCE[0]}")/run.sh
failed=0
expect() { # load cores ranks ctest-timeout expected
  local got
  got=$(PINHEAP_MPI_LOAD=$1 PINHEAP_MPI_CORES=$2 PINHEAP_MPI_CTEST_TIMEOUT=$4 bash "$run" --limit "$3" 2>&1)
  if [ "$got" != "$5" ]; then
    echo "FAILED: load $1, $2 cores, $3 ranks, ctest timeout $4: limit '$got', expected $5"
    failed=1
  else
    echo "ok: load $1, $2 cores, $3 ranks, ctest timeout $4: $got s"
  fi
}
unset PINHEAP_MPI_TIMEOUT
expect 0 2 2 300 50      # the floor
expect 0 2 4 300 80      # twice as many processes as cores
expect 2.5 2 4 300 130   # and a busy machine: 40 * 6.5 / 2
expect 6 2 4 300 200
expect 0.3 16 4 300 50   # a large idle machine
expect 40 2 4 300 290    # never past ctest's timeout less 10 s
expect 40 2 4 "" 880     # without ctest, no ceiling
# An explicit limit wins.
got=$(PINHEAP_MPI_TIMEOUT=7 PINHEAP_MPI_LOAD=40 PINHEAP_MPI_CORES=1 bash "$run" --limit 4)
[ "$got" = 7 ] || { echo "FAILED: PINHEAP_MPI_TIMEOUT=7 gave '$got'"; failed=1; }
# The machine's own load and cores give a limit within the bounds.
got=$(PINHEAP_MPI_CTEST_TIMEOUT=300 bash "$run" --limit 4)
if ! [[ "$got" =~ ^[0-9]+$ ]] || [ "$got" -lt 50 ] || [ "$got" -gt 290 ]; then
  echo "FAILED: this machine's limit '$got'"
  failed=1
else
  echo "ok: this machine ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)), 4 ranks: $got s"
fi
exit "$failed"
