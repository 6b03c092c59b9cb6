# Shared by the tool's tests: a temporary directory, counters, and checks.
# Source it after setting `name`; the script's arguments are the pinheap
# tool and the build directory.
set -euo pipefail
pinheap=$(readlink -f "$1")
build=$(readlink -f "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
  local what=$1; shift
  if "$@" > "$tmp/check.out" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/  /' "$tmp/check.out" | head -20; fi
}
# Fails when the file does not contain the text.
contains() { grep -qF -- "$2" "$1" || { echo "  $1 lacks: $2"; head -30 "$1" | sed 's/^/    /'; return 1; }; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
