#!/usr/bin/env bash
# Configuration under libpinheap-preload.so, and what a process pays for it:
#   - a FIXED heap too small (1k, 1m) stops the program, saying so and
#     naming the least size that works, which then works, whatever the
#     number of arenas (they take none of the region until they use it);
#   - PINHEAP_STATS takes the booleans the other variables take ("yes"),
#     refuses others, prints for the process it was given to and not its
#     children (no output, no descriptor left open in them), or for every
#     process with "all";
#   - PINHEAP_SIZE given to a SIMPLE heap is reported, once for a whole
#     tree of processes;
#   - the library loads no C++ runtime, and a single-threaded program makes
#     one jemalloc arena (the others come with threads).
#
#   config.sh PATH/TO/libpinheap-preload.so
set -uo pipefail
lib=$(readlink -f "$1")
py=/usr/bin/python3
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
bad() { failed=$((failed + 1)); echo "FAILED: $1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | head -5 | sed 's/^/  /'; }

# Too small: the message says so and gives the least size that works.
for size in 1k 1m; do
  err=$(env PINHEAP_SIZE=$size LD_PRELOAD="$lib" "$py" -c 'print(1)' 2>&1 >/dev/null)
  least=$(printf '%s\n' "$err" | sed -n 's/.*the least size that works is \([0-9]*\) bytes.*/\1/p')
  if printf '%s\n' "$err" | grep -q "too small" && [ -n "$least" ]; then
    ok "PINHEAP_SIZE=$size: $err"
  else
    bad "PINHEAP_SIZE=$size: no word of the least size that works" "$err"
  fi
done
out=""
if [ -n "${least:-}" ] && out=$(env PINHEAP_SIZE=$least LD_PRELOAD="$lib" "$py" -c 'print(sum(range(10)))' 2>&1) &&
   [ "$out" = 45 ]; then
  ok "PINHEAP_SIZE=$least (the least that works): python3 runs"
else
  bad "PINHEAP_SIZE=${least:-?} (the least that works)" "$out"
fi
if out=$(env PINHEAP_SIZE=$least PINHEAP_ARENAS=64 LD_PRELOAD="$lib" "$py" -c 'print(sum(range(10)))' 2>&1) &&
   [ "$out" = 45 ]; then
  ok "PINHEAP_SIZE=$least PINHEAP_ARENAS=64: python3 runs"
else
  bad "PINHEAP_SIZE=$least PINHEAP_ARENAS=64" "$out"
fi

# PINHEAP_STATS: booleans as the other variables; others refused.
for v in 1 yes on TRUE; do
  err=$(env PINHEAP_STATS=$v LD_PRELOAD="$lib" "$py" -c 'pass' 2>&1)
  if printf '%s\n' "$err" | grep -q '^pinheap: capacity'; then ok "PINHEAP_STATS=$v prints the stats"; else bad "PINHEAP_STATS=$v" "$err"; fi
done
for v in 0 no off; do
  err=$(env PINHEAP_STATS=$v LD_PRELOAD="$lib" "$py" -c 'pass' 2>&1)
  if [ -z "$err" ]; then ok "PINHEAP_STATS=$v prints nothing"; else bad "PINHEAP_STATS=$v" "$err"; fi
done
if err=$(env PINHEAP_STATS=maybe LD_PRELOAD="$lib" "$py" -c 'pass' 2>&1); then
  bad "PINHEAP_STATS=maybe was accepted" "$err"
elif printf '%s\n' "$err" | grep -q 'PINHEAP_STATS="maybe"'; then
  ok "PINHEAP_STATS=maybe refused: $err"
else
  bad "PINHEAP_STATS=maybe" "$err"
fi

# A child (python3 started by python3): its descriptors above 2 and its
# stderr, as the parent sees them.
child='
import os, subprocess, sys
code = "import os\nfds = []\nfor fd in range(3, 4096):\n    try:\n        os.fstat(fd)\n        fds.append(fd)\n    except OSError:\n        pass\nprint(fds)"
r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
print("child fds", r.stdout.strip(), "child stderr", repr(r.stderr))
'
tmp=$(mktemp "${TMPDIR:-/tmp}/pinheap-config.XXXXXX")
trap 'rm -f "$tmp"' EXIT
out=$(env PINHEAP_STATS=1 LD_PRELOAD="$lib" "$py" -c "$child" 2>"$tmp")
err=$(cat "$tmp")
if [ "$out" = "child fds [] child stderr ''" ] && printf '%s\n' "$err" | grep -q '^pinheap: capacity'; then
  ok "PINHEAP_STATS=1: the parent prints, the child neither prints nor holds a descriptor: $out"
else
  bad "PINHEAP_STATS=1 with a child: $out" "$err"
fi
out=$(env PINHEAP_STATS=all LD_PRELOAD="$lib" "$py" -c "$child" 2>/dev/null)
if printf '%s\n' "$out" | grep -q "child stderr 'pinheap: capacity"; then
  ok "PINHEAP_STATS=all: the child prints too"
else
  bad "PINHEAP_STATS=all with a child" "$out"
fi

# SIMPLE: PINHEAP_SIZE reported, once for the tree (PINHEAP_LOCK is
# honoured there: its memory comes from the local provider).
err=$(env PINHEAP_MODE=simple PINHEAP_SIZE=2g LD_PRELOAD="$lib" sh -c 'ls / >/dev/null; ls / >/dev/null' 2>&1)
n=$(printf '%s\n' "$err" | grep -c 'PINHEAP_SIZE=2g is ignored')
if [ "$n" -eq 1 ]; then ok "SIMPLE: said once: $err"; else bad "SIMPLE with PINHEAP_SIZE: said $n times" "$err"; fi

# What a process pays: no C++ runtime loaded; one arena for one thread.
if ldd "$lib" | grep -q 'libstdc++'; then bad "the library loads libstdc++" "$(ldd "$lib")"; else ok "no libstdc++ loaded"; fi
err=$(env PINHEAP_STATS=1 LD_PRELOAD="$lib" "$py" -c 'pass' 2>&1)
if printf '%s\n' "$err" | grep -q 'arenas 1 of'; then ok "one thread, one arena: $err"; else bad "one thread" "$err"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
