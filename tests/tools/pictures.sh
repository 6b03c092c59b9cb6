#!/usr/bin/env bash
# Heap pictures and the out-of-memory report: `replay --svg` and
# `demo --svg` write SVG that rsvg-convert turns into PNGs of the size the
# SVG states; the report of a hand-written trace whose long-lived blocks cut
# the heap into holes names those blocks and their sizes, and its picture
# converts too; a program under libpinheap-preload.so that runs out of
# memory leaves the report PINHEAP_OOM_REPORT names.
#
#   pictures.sh PATH/TO/pinheap BUILD_DIR
name=pictures
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# png_is FILE WIDTH HEIGHT: a PNG of that size, with some bytes in it.
png_is() {
  python3 - "$@" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (int(sys.argv[2]), int(sys.argv[3])), (w, h)
assert len(data) > 2000, len(data)
PY
}

"$pinheap" replay --arenas 1 --svg "$tmp/holes.svg" --oom-report "$tmp/oom.txt" "$here/cases/holes.txt" \
  > "$tmp/replay.out" 2> "$tmp/replay.err" || true
check "replay --svg writes the picture" contains "$tmp/replay.out" "picture: $tmp/holes.svg"
rsvg-convert "$tmp/holes.svg" -o "$tmp/holes.png"
check "its PNG is 1000 x 750" png_is "$tmp/holes.png" 1000 750
check "the first failure is marked" contains "$tmp/holes.svg" "first failure: event 10, malloc(20 MiB)"

# The report names the three 5 MiB blocks around the holes.
check "the report gives the request" contains "$tmp/oom.txt" "request: pinheap_malloc(20971520) (20.0 MiB) failed: ENOMEM"
check "the report gives the free bytes and the largest free extent" \
  contains "$tmp/oom.txt" "free: 51380224 bytes (49.0 MiB) in 4 free extents; the largest is 19922944 bytes (19.0 MiB)"
check "the report lists the 10 MiB holes" contains "$tmp/oom.txt" "10485760 bytes (10.0 MiB) free at"
n=$(grep -c "large block of 5242880 bytes (5.0 MiB) at 0x[0-9a-f]*, age" "$tmp/oom.txt" || true)
[ "$n" = 6 ] && ok "the report names the 5 MiB blocks on either side of every hole, with their ages" \
  || { bad "5 MiB blocks named $n times, not 6"; cat "$tmp/oom.txt"; }
check "the library said where the report is" contains "$tmp/replay.err" "report in $tmp/oom.txt"
rsvg-convert "$tmp/oom.txt.svg" -o "$tmp/oom.png"
check "the report's picture converts: 1040 x 230" png_is "$tmp/oom.png" 1040 230

# demo --svg: one picture per scenario and policy.
"$pinheap" demo --quick --svg "$tmp/demo" > "$tmp/demo.out"
count=0
for f in "$tmp"/demo/*.svg; do
  rsvg-convert "$f" -o "${f%.svg}.png" && png_is "${f%.svg}.png" 1000 750 && count=$((count + 1))
done
[ "$count" = 16 ] && ok "demo --svg: 16 pictures (4 scenarios, 4 policies), each converts to 1000 x 750" || bad "demo --svg: $count good pictures"

# A program out of memory under the preload library: 62 MiB fit no 64 MiB
# region with an arena and the program's own blocks in it.
rc=0
env PINHEAP_MODE=fixed PINHEAP_SIZE=64m PINHEAP_ARENAS=1 PINHEAP_OOM_REPORT="$tmp/py-%p.txt" \
  LD_PRELOAD="$build/libpinheap-preload.so" /usr/bin/python3 -c 'x = bytearray(62 << 20)' > "$tmp/py.out" 2>&1 || rc=$?
report=$(find "$tmp" -name 'py-*.txt')
if [ "$rc" != 0 ] && grep -q MemoryError "$tmp/py.out" && [ -n "$report" ] && grep -q "request: pinheap_.*(650" "$report" \
   && [ -s "$report.svg" ]; then
  ok "python3 out of memory in a 64 MiB heap: $(basename "$report"): $(grep '^request' "$report")"
else
  bad "python3 out of memory: exit $rc, report '${report}'"; cat "$tmp/py.out"
fi
finish
