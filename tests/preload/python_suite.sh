#!/usr/bin/env bash
# A slice of Python's own test suite (Debian's libpython3.11-testsuite) run
# by Debian's python3 under libpinheap-preload.so in one mode, with
# PINHEAP_STATS=1: containers, strings, the garbage collector, os, threads
# (and their exit, with thread-local data), subprocesses (which check their
# children's descriptors and standard error). Skipped (77) when the suite
# is not installed.
#
#   python_suite.sh PATH/TO/libpinheap-preload.so MODE
set -uo pipefail
lib=$(readlink -f "$1")
mode=$2
py=/usr/bin/python3
modules=(test_dict test_list test_set test_deque test_collections test_re test_json test_gc test_os test_thread
         test_threading_local test_threading test_subprocess)
if ! "$py" -c 'import test.test_dict' 2>/dev/null; then
  echo "skipped: Python's test suite is not installed (libpython3.11-testsuite)"
  exit 77
fi
out=$(mktemp "${TMPDIR:-/tmp}/pinheap-pysuite.XXXXXX")
trap 'rm -f "$out"' EXIT
env PINHEAP_MODE="$mode" PINHEAP_STATS=1 LD_PRELOAD="$lib" "$py" -m test -q "${modules[@]}" > "$out" 2>&1
rc=$?
tail -4 "$out"
if [ $rc -eq 0 ] && grep -q '^Tests result: SUCCESS' "$out" && grep -q '^pinheap: capacity' "$out"; then
  echo "ok: ${#modules[@]} modules of Python's test suite under libpinheap-preload.so ($mode)"
else
  grep -E 'failed|FAIL|Error' "$out" | head -20
  echo "FAILED: Python's test suite under libpinheap-preload.so ($mode), exit status $rc"
  exit 1
fi
