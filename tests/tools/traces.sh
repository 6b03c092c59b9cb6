#!/usr/bin/env bash
# The trace format through the tool: every generated kind read back and
# converted binary -> text -> binary byte for byte; hand-written traces
# (cases/) replayed under each policy with the outcome each states; `size`
# on a trace whose answer is known exactly; `--ring-min` moving a block
# between the ring and the top; truncated and corrupt traces
# refused with the offset, never a crash; the progress bar only on a
# terminal.
#
#   traces.sh PATH/TO/pinheap BUILD_DIR
name=traces
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Every kind, small, both forms.
for kind in pgas server grow seq700 seq1000 tiny churn; do
  "$pinheap" gen "$kind" --steps 50 --seed 7 -o "$tmp/$kind.bin"
  check "gen $kind: the trace reads" "$pinheap" info "$tmp/$kind.bin"
  "$pinheap" convert "$tmp/$kind.bin" "$tmp/$kind.txt"
  "$pinheap" convert "$tmp/$kind.txt" "$tmp/$kind.2.bin"
  check "$kind: binary -> text -> binary, byte for byte" cmp "$tmp/$kind.bin" "$tmp/$kind.2.bin"
  "$pinheap" gen "$kind" --steps 50 --seed 7 --text -o "$tmp/$kind.gen.txt"
  check "$kind: gen --text is the text form of gen" cmp "$tmp/$kind.txt" "$tmp/$kind.gen.txt"
done

# Hand-written traces: "# expect: POLICY=ok|fail:EVENT ..." under one arena.
for f in "$here"/cases/*.txt; do
  expect=$(sed -n 's/^# expect: //p' "$f")
  [ -n "$expect" ] || continue
  for pair in $expect; do
    policy=${pair%%=*} want=${pair#*=}
    rc=0
    "$pinheap" replay --arenas 1 --policy "$policy" --json "$f" > "$tmp/out.json" || rc=$?
    got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("ok" if d["completed"] else "fail:%d" % d["first_failure"]["event"])' "$tmp/out.json")
    want_rc=1
    [ "$want" = ok ] && want_rc=0
    if [ "$got" = "$want" ] && [ "$rc" = "$want_rc" ]; then
      ok "$(basename "$f") under $policy: $got"
    else
      bad "$(basename "$f") under $policy: $got (exit $rc), expected $want"
    fi
  done
done

# size: 350 MiB under two-ended, 652 MiB under bump (cases/exact.txt says why).
"$pinheap" size --arenas 1 --scan 4 --json "$here/cases/exact.txt" > "$tmp/size.json"
check "size of exact.txt: 367001600 (two-ended) and 683671552 (bump), both found and bounds" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
p = {x["policy"]: x for x in d["policies"]}
assert d["peak_live"] == 300 << 20, d["peak_live"]
for name, want in (("two-ended", 350 << 20), ("bump", 652 << 20)):
    x = p[name]
    assert x["smallest"] == want and x["every_probe_from"] == want, (name, x["smallest"], x["every_probe_from"])
    assert x["largest_failing"] == want - 4096, x["largest_failing"]
    assert all(q["completed"] == (q["size"] >= want) for q in x["probes"]), x["probes"]
' "$tmp/size.json"
"$pinheap" size --arenas 1 --scan 4 "$here/cases/exact.txt" > "$tmp/size.txt"
check "size prints the table and the PINHEAP_SIZE to use" contains "$tmp/size.txt" "two-ended: PINHEAP_SIZE=367001600"

# --ring-min: a 10 MiB block goes round the ring (from the bottom) when
# ring_min is below it, and to the top when above; the 95 MiB that then
# fails reports the hole above the block or at the region's start.
printf 'pinheap-trace 1\nm 1 10m\nm 2 95m\n' > "$tmp/ring.txt"
for rm in 8m 1g; do
  "$pinheap" replay "$tmp/ring.txt" --heap 100m --policy ring --arenas 1 --ring-min "$rm" \
    --oom-report "$tmp/ring-$rm.report" > /dev/null 2>&1 || true
done
check "replay --ring-min 8m: the block at the bottom" contains "$tmp/ring-8m.report" "(offset 10.0 MiB)"
check "replay --ring-min 1g: the block at the top" contains "$tmp/ring-1g.report" "(offset 0 B)"
rc=0
"$pinheap" size "$tmp/ring.txt" --ring-min x > "$tmp/ring.out" 2>&1 || rc=$?
check "size --ring-min x: a usage error" test "$rc" = 2
check "size --ring-min x: says why" contains "$tmp/ring.out" "--ring-min needs a size"

# Truncations and corruptions: exit 2 with an offset, never a signal.
"$pinheap" gen churn --steps 20 -o "$tmp/c.bin"
len=$(stat -c %s "$tmp/c.bin")
worst=0 errors=0
for cut in $(seq 0 37 "$len") 9 11 12; do
  head -c "$cut" "$tmp/c.bin" > "$tmp/cut.bin"
  rc=0
  "$pinheap" info "$tmp/cut.bin" > "$tmp/cut.out" 2>&1 || rc=$?
  [ "$rc" -gt "$worst" ] && worst=$rc
  if [ "$rc" = 2 ]; then
    errors=$((errors + 1))
    grep -q "offset [0-9]" "$tmp/cut.out" || { worst=99; cat "$tmp/cut.out"; }
  fi
done
[ "$worst" -le 2 ] && [ "$errors" -gt 0 ] && ok "truncated traces: errors with an offset ($errors cuts), no crash" \
  || bad "truncated traces: worst exit $worst"
python3 - "$tmp/c.bin" "$tmp/flip" <<'PY'
import random, sys
data = open(sys.argv[1], "rb").read()
rnd = random.Random(13)
for i in range(200):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        b[rnd.randrange(len(b))] ^= rnd.randint(1, 255)
    open("%s.%d" % (sys.argv[2], i), "wb").write(b)
PY
worst=0
for f in "$tmp"/flip.*; do
  rc=0
  "$pinheap" replay --heap 2g "$f" > "$tmp/flip.out" 2>&1 || rc=$?
  [ "$rc" -gt "$worst" ] && worst=$rc
  if [ "$rc" = 2 ] && ! grep -q "offset [0-9]" "$tmp/flip.out"; then worst=98; cat "$tmp/flip.out"; fi
done
[ "$worst" -le 2 ] && ok "200 corrupted traces replayed or refused with an offset, no crash" \
  || bad "corrupted traces: worst exit $worst"
printf 'pinheap-trace 1\nm 1 10\nf 2\n' > "$tmp/bad.txt"
rc=0; "$pinheap" replay --heap 1g "$tmp/bad.txt" 2> "$tmp/bad.err" || rc=$?
[ "$rc" = 2 ] && grep -q 'bad.txt:3: free: block 2 is not live (offset 23)' "$tmp/bad.err" \
  && ok "a text error names the line and the offset" || bad "text error: exit $rc: $(cat "$tmp/bad.err")"
head -c 4000 /dev/urandom > "$tmp/noise"
rc=0; "$pinheap" info "$tmp/noise" > "$tmp/noise.out" 2>&1 || rc=$?
[ "$rc" = 2 ] && ok "random bytes refused: $(tail -1 "$tmp/noise.out")" || bad "random bytes: exit $rc"

# The progress bar: on a terminal only.
"$pinheap" gen server --steps 20000 -o "$tmp/s.bin"
"$pinheap" replay "$tmp/s.bin" > /dev/null 2> "$tmp/quiet.err"
check "no progress bar when stderr is not a terminal" test ! -s "$tmp/quiet.err"
if command -v script > /dev/null; then
  script -qec "'$pinheap' replay '$tmp/s.bin' > /dev/null" /dev/null > "$tmp/tty.out" 2>&1 || true
  check "a progress bar on a terminal" contains "$tmp/tty.out" "replay ["
fi
finish
