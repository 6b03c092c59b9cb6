#!/usr/bin/env bash
# Runs an OpenSHMEM test program (tests/shmem/spec_*.c, written against the
# specification alone) under oshrun three ways: as built with oshcc
# (PLAIN; not for KIND misuse), the same binary with LIB (libpinheap-shmem.so) in LD_PRELOAD,
# and built with the library linked before the implementation (LINKED);
# then checks what KIND says of their outputs. Each run with the library
# must print the library's stats line (PINHEAP_STATS=1), which shows that
# the library served the calls, and the plain run must not.
#
#   tests/shmem/check.sh KIND NP LIB PLAIN LINKED [ARGS...]
#
# KIND:
#   same    the two runs with the library print the same lines, none of
#           them an error, and leave nothing allocated; the plain run prints the same lines but for
#           those naming shmem_calloc, which are shown (Open MPI 4.1's
#           shmem_calloc zeroes the object after its barrier, and so loses
#           puts made right after it returns)
#   seq     with the library every sequence of spec_seq is ok; without it
#           (the implementation's own heap) "tiny" fails and the others
#           are ok
#   zero    with the library the answers are the specification's
#           (spec_zero.expected beside this script); the plain run's are
#           shown
#   misuse  ARGS is the case, then a phrase: with the library the run must
#           fail, print the phrase, and not reach its end (spec_misuse; a
#           setup the environment makes fail, any program)
# SHMEM_SYMMETRIC_HEAP_SIZE is 64M unless set. Exit status 0 when the check
# passes.
set -uo pipefail

[ "$#" -ge 5 ] || { sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
kind=$1 np=$2 lib=$3 plain=$4 linked=$5
shift 5
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SHMEM_SYMMETRIC_HEAP_SIZE=${SHMEM_SYMMETRIC_HEAP_SIZE:-64M}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-shmem-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "check.sh: FAIL: $*" >&2; failures=$((failures + 1)); }
stats="libpinheap-shmem: symmetric heap of $np PEs"

# run NAME PROGRAM...: one oshrun job; its stdout in $tmp/NAME.out, its
# stderr in $tmp/NAME.err, its status in $tmp/NAME.rc, and every PE's
# stderr whole, one after the other, in $tmp/NAME.pes (oshrun's own stream
# cuts lines anywhere when PEs print much at once: the stats line is read
# from there).
run() {
  local name=$1
  shift
  PINHEAP_STATS=1 PINHEAP_MPI_OUTPUT="$tmp/$name.dir" bash "$here/../mpi/run.sh" oshmem "$np" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
  cat /dev/null $(ls "$tmp/$name.dir"/*/rank.*/stderr 2>/dev/null | sort -V) >"$tmp/$name.pes"
}
show() {
  echo "--- $1 (exit $(cat "$tmp/$1.rc")):"
  cat "$tmp/$1.out"
  grep -F "$stats" "$tmp/$1.pes"
  grep -E '^(pinheap|libpinheap-shmem)' "$tmp/$1.err" | grep -vF "$stats" | sort | uniq -c | sort -rn | head -4
}
served() {
  grep -qF "$stats" "$tmp/$1.pes" || fail "$1: no line '$stats' on stderr: the library did not serve the calls"
}

# Three runs share the ctest timeout that run.sh keeps its limit under.
[ -n "${PINHEAP_MPI_CTEST_TIMEOUT:-}" ] && export PINHEAP_MPI_CTEST_TIMEOUT=$((PINHEAP_MPI_CTEST_TIMEOUT / 3))
# A misused program's behaviour without the library is undefined: not run.
if [ "$kind" = misuse ]; then
  echo "(not run without the library)" >"$tmp/plain.out"
  echo 0 >"$tmp/plain.rc"
  : >"$tmp/plain.err"
  : >"$tmp/plain.pes"
else
  run plain "$plain" "$@"
fi
run preload env LD_PRELOAD="$lib" "$plain" "$@"
run linked "$linked" "$@"
for r in plain preload linked; do show "$r"; done
if grep -qF "$stats" "$tmp/plain.pes" "$tmp/plain.err"; then fail "plain: the library's stats line, though it was not loaded"; fi
if [ "$kind" != misuse ]; then
  for r in plain preload linked; do
    [ "$(cat "$tmp/$r.rc")" = 0 ] || fail "$r: exit status $(cat "$tmp/$r.rc")"
  done
  served preload
  served linked
  cmp -s "$tmp/preload.out" "$tmp/linked.out" ||
    fail "the runs with the library, preloaded and linked, print different lines"
  [ -s "$tmp/preload.out" ] || fail "the runs with the library print nothing"
fi

case $kind in
  same)
    if grep -E '[1-9][0-9]* errors|FAILED|: NO$|NOT |some PEs' "$tmp/preload.out"; then
      fail "the run with the library reports errors (above)"
    fi
    # The programs free what they allocate: nothing is left at exit.
    for r in preload linked; do
      grep -F "$stats" "$tmp/$r.pes" | grep -q ', allocated 0,' || fail "$r: objects left allocated at exit"
    done
    if ! diff <(grep -v shmem_calloc "$tmp/plain.out") <(grep -v shmem_calloc "$tmp/preload.out"); then
      fail "without the library the program prints other lines (above: <, without; >, with)"
    fi
    if ! cmp -s "$tmp/plain.out" "$tmp/preload.out"; then
      echo "without the library, shmem_calloc lost puts made right after it returned:"
      diff "$tmp/plain.out" "$tmp/preload.out" | grep '^<' || true
    fi ;;
  seq)
    [ "$(grep -c ': ok$' "$tmp/preload.out")" = 3 ] || fail "with the library a sequence failed"
    grep -q '^tiny: FAILED' "$tmp/plain.out" || fail "without the library the tiny-object sequence did not fail"
    [ "$(grep -c ': ok$' "$tmp/plain.out")" = 2 ] || fail "without the library seq700 or seq1000 failed" ;;
  zero)
    diff "$here/spec_zero.expected" "$tmp/preload.out" ||
      fail "with the library the answers are not the specification's (above: <, the specification; >, with)"
    if ! cmp -s "$here/spec_zero.expected" "$tmp/plain.out"; then
      echo "without the library, the implementation's answers that are not the specification's:"
      diff "$here/spec_zero.expected" "$tmp/plain.out" | grep '^>' || true
    fi ;;
  misuse)
    phrase=${2:?misuse needs the case and a phrase}
    for r in preload linked; do
      [ "$(cat "$tmp/$r.rc")" != 0 ] || fail "$r: exit status 0"
      grep -qF "$phrase" "$tmp/$r.err" || fail "$r: no message with '$phrase'"
      if grep -q 'reached the end' "$tmp/$r.out"; then fail "$r: reached its end"; fi
    done ;;
  *)
    echo "check.sh: unknown kind $kind" >&2
    exit 2 ;;
esac
if [ "$failures" -ne 0 ]; then
  echo "check.sh: $failures failure(s)" >&2
  exit 1
fi
echo "check.sh: $kind: passed"
