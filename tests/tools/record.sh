#!/usr/bin/env bash
# `pinheap record` on Debian programs (python3, sqlite3, sort --parallel=2)
# and on multi-threaded programs that fork: their output unchanged, their
# traces complete and valid, replayed in every mode; a child traces itself
# (--children) or nothing, never into its parent's trace.
#
#   record.sh PATH/TO/pinheap BUILD_DIR
name=record
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
preload=$here/../preload
py=/usr/bin/python3

# record NAME MODE COMMAND...: records with the heap in MODE (or "none":
# --no-heap), compares the output with a run without it.
record() {
  local label=$1 mode=$2; shift 2
  local opts=()
  [ "$mode" = none ] && opts=(--no-heap)
  "$@" > "$tmp/ref" 2>/dev/null
  if env PINHEAP_MODE="${mode/none/fixed}" PINHEAP_SIZE=2g "$pinheap" record "${opts[@]}" -o "$tmp/$label.trace" -- "$@" \
       > "$tmp/out" 2> "$tmp/err" && cmp -s "$tmp/ref" "$tmp/out" && "$pinheap" info "$tmp/$label.trace" > "$tmp/$label.info" \
     && grep -q "complete (an end record)" "$tmp/$label.info"; then
    ok "record $label ($mode): $(grep '^pinheap record' "$tmp/err" | sed 's/^pinheap record: [^:]*: //')"
  else
    bad "record $label ($mode)"; sed 's/^/  /' "$tmp/err" "$tmp/$label.info" 2>/dev/null | head -10
  fi
}

# replay_modes NAME: the trace completes in a FIXED, a DYNAMIC and a SIMPLE heap.
replay_modes() {
  for mode in fixed dynamic simple; do
    check "replay $1 in a $mode heap" "$pinheap" replay --mode "$mode" --heap 2g "$tmp/$1.trace"
  done
}

seq 1 300000 | awk '{print ($1 * 7919) % 100003, $1}' > "$tmp/sort.in"
for mode in fixed dynamic simple none; do
  record "python3-$mode" "$mode" "$py" "$preload/dicts.py"
done
record sqlite3 fixed sh -c "exec sqlite3 :memory: < '$preload/table.sql'"
record sort fixed sort --parallel=2 -S 50M "$tmp/sort.in"
for t in python3-fixed python3-none sqlite3 sort; do replay_modes "$t"; done

# A program that never allocates still leaves a trace, complete and empty.
check "record true: a complete trace without events" "$pinheap" record -o "$tmp/true.trace" -- true
"$pinheap" info "$tmp/true.trace" > "$tmp/true.info"
check "its trace: an end record, no block" contains "$tmp/true.info" "peak live bytes: 0 (0 B)"

# Threads hand blocks to each other and the main thread forks.
forkrec=$build/tests/tools_forkrec
rm -f "$tmp"/fork.trace*
check "forkrec recorded, children traced" "$pinheap" record --children -o "$tmp/fork.trace" -- "$forkrec" 12
n=0 good=0
for f in "$tmp"/fork.trace.*; do
  n=$((n + 1))
  "$pinheap" info "$f" > "$tmp/child.info" 2>&1 && grep -q "complete (an end record)" "$tmp/child.info" \
    && grep -q "info: forked from" "$tmp/child.info" && "$pinheap" replay --heap 1g "$f" > /dev/null && good=$((good + 1))
done
[ "$n" = 12 ] && [ "$good" = 12 ] && ok "12 children, 12 traces of their own, complete, replayed" \
  || bad "children: $n traces, $good complete and replayed"
"$pinheap" info "$tmp/fork.trace" > "$tmp/fork.info"
threads=$(sed -n 's/^  threads: //p' "$tmp/fork.info")
check "the parent's trace: complete, 4 threads" test "$threads" = 4 -a -n "$(grep 'complete (an end record)' "$tmp/fork.info")"
check "the program's pinheap_phase calls are phase records" contains "$tmp/fork.info" "phase: workers stop"
replay_modes fork
rm -f "$tmp"/fork.trace*
check "forkrec recorded without --children" "$pinheap" record -o "$tmp/fork.trace" -- "$forkrec" 12
check "no child wrote a trace" test -z "$(find "$tmp" -name 'fork.trace.*')"
check "the parent's trace is complete" "$pinheap" info "$tmp/fork.trace"
# Children that end by _exit while threads allocate (tests/preload/forker.c).
rm -f "$tmp"/forker.trace*
check "preload's forker recorded, children traced" "$pinheap" record --children -o "$tmp/forker.trace" \
  -- "$build/tests/preload_forker" 10
good=0
for f in "$tmp"/forker.trace*; do
  "$pinheap" info "$f" > "$tmp/f.info" 2>&1 && grep -q "complete (an end record)" "$tmp/f.info" && good=$((good + 1))
done
[ "$good" = 11 ] && ok "forker: 11 complete traces" || bad "forker: $good complete traces of 11"
finish
