#!/usr/bin/env bash
# The small objects' fast paths of an optimized build: heap_malloc and
# heap_free, from their entry to their first return, must neither save a
# register (push) nor call anything (call), so that a malloc served by the
# thread's stack and a free onto it cost only their own work. Prints each
# fast path's length in instructions.
#
# usage: fastpath.sh LIBPINHEAP OBJDUMP
# Exit status: 0 when both fast paths hold, 1 when one does not, 2 on bad
# usage or a function not found.
set -u
[ $# -eq 2 ] || { sed -n '2,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
lib=$1 objdump=$2
status=0
for fn in heap_malloc heap_free; do
  # The function's instructions in address order, mnemonic only.
  insns=$("$objdump" -d --no-show-raw-insn --disassemble="$fn" "$lib" 2>/dev/null |
    awk -F'\t' '/^ *[0-9a-f]+:\t/ { split($2, w, " "); print w[1] }')
  if [ -z "$insns" ]; then
    echo "fastpath.sh: no function $fn in $lib" >&2
    exit 2
  fi
  # Straight from the entry: every instruction before the first ret (the
  # compiler lays the fast path out first, the slow paths after it).
  fast=$(printf '%s\n' "$insns" | awk '$1 ~ /^ret/ { exit } { print }')
  n=$(printf '%s\n' "$fast" | grep -c .)
  bad=$(printf '%s\n' "$fast" | grep -cE '^(push|call)')
  if [ "$n" -eq "$(printf '%s\n' "$insns" | grep -c .)" ]; then
    echo "$fn: no return found"
    status=1
  elif [ "$bad" -ne 0 ]; then
    echo "$fn: the fast path ($n instructions before the first return) saves registers or calls: $(printf '%s\n' "$fast" | grep -E '^(push|call)' | sort | uniq -c | tr -s ' \n' ' ')"
    status=1
  else
    echo "$fn: fast path of $n instructions before the first return, no push, no call"
  fi
done
exit $status
