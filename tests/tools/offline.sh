#!/usr/bin/env bash
# pinheap offline: hand-written traces whose clairvoyant
# placement is known (blocks that never live at once share addresses;
# the largest is placed first, which a placement in the order of the
# requests would not do), the text form's prefixes, sizes and kinds read,
# the same answer from a trace's binary and text forms, and on a generated
# trace a heap no smaller than its peak live bytes.
#
#   offline.sh PATH/TO/pinheap BUILD_DIR
name=offline
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# hm TRACE: pinheap offline's H/M for one trace.
hm() { "$pinheap" offline "$1" | awk -v t="$(basename "$1")" '$1 == t {print $4}'; }

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

# A generated trace: never less than its peak live bytes.
"$pinheap" gen pgas --seed 3 --steps 100 --text -o "$tmp/pgas.txt"
r=$(hm "$tmp/pgas.txt")
check "pgas: H/M $r is at least 1" awk -v r="$r" 'BEGIN { exit !(r + 0 >= 1) }'
"$pinheap" convert --binary "$tmp/pgas.txt" "$tmp/pgas.trace"
check "pgas: the binary form gives the same H/M" test "$(hm "$tmp/pgas.trace")" = "$r"
check "no arguments: a usage error" bash -c "'$pinheap' offline 2> /dev/null; test \$? = 2"
printf 'pinheap-trace 1\nm 1 100\nq\n' > "$tmp/bad.txt"
check "an unreadable trace: exit 2, the line named" bash -c "'$pinheap' offline '$tmp/bad.txt' 2> '$tmp/bad.err'; test \$? = 2 && grep -q 'bad.txt:3: unknown record' '$tmp/bad.err'"
finish
