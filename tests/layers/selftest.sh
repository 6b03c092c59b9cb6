#!/usr/bin/env bash
# The layer check's own cases (scripts/layers.py): on a copy of src/,
# include/ and the script, it passes as the tree is, and fails, naming the
# edge, on an upward call, an upward include (a cycle too), a misnamed
# function and a long file that says not why.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fresh() {
  rm -rf "$tmp/t" && mkdir -p "$tmp/t/scripts"
  cp -r "$root/src" "$root/include" "$tmp/t/" && cp "$root/scripts/layers.py" "$tmp/t/scripts/"
}
failed=0
expect() { # rc wanted, text wanted in the output, what
  local want=$1 text=$2 what=$3 out rc=0
  out=$(python3 "$tmp/t/scripts/layers.py" 2>&1) || rc=$?
  if [ "$rc" -eq "$want" ] && grep -qF -- "$text" <<<"$out"; then
    echo "ok: $what"
  else
    echo "FAILED: $what: exit $rc (wanted $want), output:"; echo "$out" | tail -5
    failed=1
  fi
}
fresh
expect 0 "every one downward" "the tree as it is"
fresh
echo 'void em_upward(void) { heap_reclaim(0); }' >> "$tmp/t/src/em.c"
expect 1 "em (layer 5) uses heap (layer 11): calls heap_reclaim" "an upward call"
fresh
echo '#include "heap.h"' >> "$tmp/t/src/tree.h"
expect 1 "modules in a cycle:" "an upward include makes a cycle"
fresh
printf 'void helper_elsewhere(void) {}\n' >> "$tmp/t/src/tree.c"
expect 1 "defines helper_elsewhere: not its module's prefix" "a misnamed function"
fresh
seq 700 | sed 's|.*|/* line */|' >> "$tmp/t/src/util.h"
expect 1 "src/util.h has" "a long file that says not why"
exit $failed
