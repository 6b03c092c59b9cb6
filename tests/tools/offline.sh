#!/usr/bin/env bash
# pinheap offline: hand-written traces whose clairvoyant
# placement is known (blocks that never live at once share addresses;
# the largest is placed first, which a placement in the order of the
# requests would not do; exact holes, buckets of the time index, the 14 KiB
# bound, a block's last event), the text form's prefixes, sizes and kinds read,
# the same answer from a trace's binary and text forms, and on a generated
# trace a heap no smaller than its peak live bytes.
#
#   offline.sh PATH/TO/pinheap BUILD_DIR
name=offline
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# column N TRACE: column N of pinheap offline's line for one trace; hm
# TRACE: its H/M; need TRACE: the heap it needs.
column() { "$pinheap" offline "$2" | awk -v t="$(basename "$2")" -v n="$1" '$1 == t {print $n}'; }
hm() { column 4 "$1"; }
need() { column 3 "$1"; }

# Two arrays that never live at once take the same place: 1.000, where the
# sum of their sizes would give 2.000.
cat > "$tmp/apart.txt" << 'T'
pinheap-trace 1
m 1 100m
f 1
m 2 100m
f 2
T
check "arrays apart in time share a place" test "$(hm "$tmp/apart.txt")" = 1.000

# A lives at 0-3, B at 1-5, C (twice their size) at 4-6: the peak is B + C.
# Placed in request order (A at 0, B above it, C above B) it needs 400 MiB,
# 1.333; largest first C goes at 0, A beside it in time, B above C: 300 MiB.
cat > "$tmp/order.txt" << 'T'
pinheap-trace 1
m 1 100m
m 2 100m
f 1
m 3 200m
f 2
f 3
T
check "the largest block first: H/M 1.000" test "$(hm "$tmp/order.txt")" = 1.000

# Thread and time prefixes, sizes as PINHEAP_SIZE takes them (a fraction
# rounded up), calloc, aligned, realloc (the old extent ends where the new
# one begins), small blocks counted as their bytes: peak 1.5 MiB + 64 KiB +
# 100 B + 103 B, and the same heap.
cat > "$tmp/kinds.txt" << 'T'
pinheap-trace 1
# a comment
t1 +250 c 1 2 0.75m
t0 a 2 4096 64KiB
m 3 100
m 4 0.1k
r 1 1m
f 2
f 1
f 3
f 4
end 9
T
check "calloc, aligned, realloc and prefixes read: H/M 1.000" test "$(hm "$tmp/kinds.txt")" = 1.000
"$pinheap" offline "$tmp/kinds.txt" > "$tmp/kinds.out"
check "kinds: peak live bytes 1,638,603" contains "$tmp/kinds.out" " 1638603 "
printf 'pinheap-trace 1\n' > "$tmp/empty.txt"
check "a trace without allocations: an error, not a crash" bash -c "'$pinheap' offline '$tmp/empty.txt' 2> '$tmp/empty.err'; test \$? = 1 && grep -q 'no allocation' '$tmp/empty.err'"

# Blocks above 14 KiB are page-rounded extents, those up to it their bytes;
# a block never freed lives to the end.
printf 'pinheap-trace 1\nm 1 14337\n' > "$tmp/above.txt"
printf 'pinheap-trace 1\nm 1 14336\n' > "$tmp/at.txt"
check "14337 B: an extent of 16 KiB" test "$(need "$tmp/above.txt")" = 16384
check "14336 B: its bytes" test "$(need "$tmp/at.txt")" = 14336

# A (100 KiB) lives over events 0-1399, across the time index's buckets of
# 1024 events; B (200 KiB), larger and so placed first, at event 1099 only.
# A must meet B: B at 0, A above it; a 16-byte block lives beside A.
{
  echo "pinheap-trace 1"
  echo "m 1 100k"
  for i in $(seq 549); do printf 'm 10 16\nf 10\n'; done
  printf 'm 2 200k\nf 2\n'
  for i in $(seq 300); do printf 'm 10 16\nf 10\n'; done
  echo "f 1"
} > "$tmp/buckets.txt"
check "blocks met across buckets: 300 KiB + 16 B" test "$(need "$tmp/buckets.txt")" = 307216

# A block fits a hole of exactly its size: A (300 KiB) dies as C (200 KiB)
# is born under B (200 KiB, at 300 KiB, placed above A); D (100 KiB) meets
# B and C and takes the 100 KiB between them: 500 KiB + 16 B, not 600.
cat > "$tmp/exact.txt" << 'T'
pinheap-trace 1
m 1 300k
m 9 16
m 2 200k
f 9
f 1
m 9 16
m 3 200k
m 4 100k
f 2
f 4
f 3
f 9
T
check "a hole of exactly the block's size taken" test "$(need "$tmp/exact.txt")" = 512016

# A block is not live at the event that ends it: the realloc to 16 B frees
# the 100 KiB at the event the 16 B are born.
printf 'pinheap-trace 1\nm 1 100k\nr 1 16\nf 1\n' > "$tmp/ends.txt"
check "a block ends at its free: 100 KiB, not 100 KiB + 16 B" test "$(need "$tmp/ends.txt")" = 102400

# A generated trace: the heap the earlier implementation of this placement
# (a script, before the command) computed, and never less than its peak.
"$pinheap" gen pgas --seed 3 --steps 100 --text -o "$tmp/pgas.txt"
check "pgas seed 3, 100 steps: 959,858,631 bytes" test "$(need "$tmp/pgas.txt")" = 959858631
r=$(hm "$tmp/pgas.txt")
check "pgas: H/M $r is at least 1" awk -v r="$r" 'BEGIN { exit !(r + 0 >= 1) }'
"$pinheap" convert --binary "$tmp/pgas.txt" "$tmp/pgas.trace"
check "pgas: the binary form gives the same H/M" test "$(hm "$tmp/pgas.trace")" = "$r"
check "no arguments: a usage error" bash -c "'$pinheap' offline 2> /dev/null; test \$? = 2"
printf 'pinheap-trace 1\nm 1 100\nq\n' > "$tmp/bad.txt"
check "an unreadable trace: exit 2, the line named" bash -c "'$pinheap' offline '$tmp/bad.txt' 2> '$tmp/bad.err'; test \$? = 2 && grep -q 'bad.txt:3: unknown record' '$tmp/bad.err'"
finish
