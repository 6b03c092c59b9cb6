#!/usr/bin/env bash
# Runs unmodified programs from Debian's packages under libpinheap-preload.so
# in each available mode (python3 also with every debugging aid) and
# compares their output with a run without it;
# checks the stats printed at exit and that a malformed environment value is
# refused by name.
#
#   run.sh PATH/TO/libpinheap-preload.so PATH/TO/preload_forker
set -euo pipefail
lib=$(readlink -f "$1")
forker=$(readlink -f "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-preload.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
passed=0 failed=0

check() { # name, mode, then the command; output compared with the reference run
  local name=$1 mode=$2; shift 2
  "$@" > "$tmp/ref" 2>/dev/null
  if env PINHEAP_MODE="$mode" PINHEAP_SIZE=2g PINHEAP_STATS=1 LD_PRELOAD="$lib" "$@" > "$tmp/out" 2> "$tmp/err" &&
     cmp -s "$tmp/ref" "$tmp/out" && grep -q '^pinheap: capacity .* allocated ' "$tmp/err"; then
    echo "ok: $name ($mode): $(grep '^pinheap: capacity' "$tmp/err")"
    passed=$((passed + 1))
  else
    echo "FAILED: $name ($mode)"; sed 's/^/  /' "$tmp/err" | head -5
    failed=$((failed + 1))
  fi
}

seq 1 300000 | awk '{print ($1 * 7919) % 100003, $1}' > "$tmp/sort.in"
for mode in simple fixed dynamic; do
  check "python3 dicts and lists" "$mode" "$py" "$here/dicts.py"
  check "sqlite3 table and index" "$mode" sqlite3 :memory: ".read $here/table.sql"
  check "sort, 2 threads" "$mode" sort --parallel=2 -S 50M "$tmp/sort.in"
done

# Every debugging aid on: the programs' blocks get canaries and poison.
for mode in simple fixed dynamic; do
  check "python3 with PINHEAP_DEBUG=1" "$mode" env PINHEAP_DEBUG=1 "$py" "$here/dicts.py"
done

# fork() while other threads allocate: every child must finish.
for mode in simple fixed dynamic; do
  if out=$(timeout 120 env PINHEAP_MODE="$mode" PINHEAP_SIZE=1g LD_PRELOAD="$lib" "$forker" 300 2>&1); then
    echo "ok: $out ($mode)"; passed=$((passed + 1))
  else
    echo "FAILED: fork while threads allocate ($mode): $out"; failed=$((failed + 1))
  fi
done

# A malformed value: the program stops at once with the variable named.
if env PINHEAP_SIZE=12q LD_PRELOAD="$lib" "$py" -c 'print(1)' > /dev/null 2> "$tmp/err"; then
  echo "FAILED: PINHEAP_SIZE=12q was accepted"; failed=$((failed + 1))
elif grep -q 'PINHEAP_SIZE="12q"' "$tmp/err"; then
  echo "ok: PINHEAP_SIZE=12q refused: $(head -1 "$tmp/err")"; passed=$((passed + 1))
else
  echo "FAILED: PINHEAP_SIZE=12q: $(head -1 "$tmp/err")"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
