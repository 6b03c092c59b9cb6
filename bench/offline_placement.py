#!/usr/bin/env python3
"""Clairvoyant placement of a trace's extents, for comparison with the
placement policies' `pinheap size`.

Reads a trace in text form (`pinheap convert --text`), takes every block
above 14 KiB (the extents the extent manager places, page-rounded) with its
whole lifetime known in advance, and places them offline by greedy by size:
largest first, each at the lowest address where it meets no block live at
the same time (the heuristic used to plan the buffers of a computation
whose lifetimes are known). The blocks of at most 14 KiB count as their
live bytes (exact, as if packed without loss) above the extents live at the
same moment. It prints the heap that placement needs over the trace's peak
live bytes (H/M): a heap no online policy is promised to reach, since it
knows when every block dies; not a lower bound (no placement found here
is proved the least).

    offline_placement.py TRACE.txt [TRACE.txt ...]

prints per trace: peak live bytes M, the heap the placement needs, H/M, and
at the end the mean H/M.
"""
import re
import sys

PAGE = 4096
LARGE = 14 << 10  # above it a block is an extent of its own (large_threshold)
BUCKET = 1024  # events per bucket of the time index


def size_of(word):
    """A size as PINHEAP_SIZE takes it: bytes, or a decimal number with k,
    m, g or t (powers of 1024, then optionally b or ib), its fraction
    rounded up to a whole byte."""
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:([kmgt])(?:i?b)?)?", word, re.IGNORECASE)
    if not m or (m.group(2) and not m.group(3)):
        raise ValueError("not a size: %r" % word)
    unit = 1 << (10 * "kmgt".index(m.group(3).lower()) + 10) if m.group(3) else 1
    whole, frac = int(m.group(1)), m.group(2) or ""
    return whole * unit + -(-int(frac or "0") * unit // 10 ** len(frac))


def read(path):
    """The trace's extents as (bytes, birth, death), per event the live bytes
    of the small blocks, and the trace's peak live bytes."""
    extents, small_live = [], []
    live, born = {}, {}
    cur = peak = small = 0

    def gone(ident, t):
        nonlocal cur, small
        n = live.pop(ident)
        cur -= n
        if n <= LARGE:
            small -= n
        else:
            extents.append((-(-n // PAGE) * PAGE, born[ident], t))

    def came(ident, n, t):
        nonlocal cur, small, peak
        live[ident], born[ident] = n, t
        cur += n
        if n <= LARGE:
            small += n
        peak = max(peak, cur)

    with open(path) as f:
        for line in f:
            w = line.split()
            while w and (w[0][0] == "+" or (w[0][0] == "t" and w[0][1:].isdigit())):
                w = w[1:]
            if not w or w[0] not in ("m", "c", "r", "a", "f"):
                continue
            t = len(small_live)
            ident = int(w[1])
            if w[0] == "m":
                came(ident, size_of(w[2]), t)
            elif w[0] == "c":
                came(ident, int(w[2]) * size_of(w[3]), t)
            elif w[0] == "a":
                came(ident, size_of(w[3]), t)
            elif w[0] == "r":
                gone(ident, t)
                came(ident, size_of(w[2]), t)
            else:
                gone(ident, t)
            small_live.append(small)
    for ident in list(live):
        gone(ident, len(small_live))
    return extents, small_live, peak


def place(extents, events):
    """Greedy by size; returns each extent's (birth, death, offset, bytes)."""
    buckets = [[] for _ in range(events // BUCKET + 2)]
    placed = []
    for n, b, e in sorted(extents, key=lambda x: (-x[0], x[1])):
        seen = set()
        busy = []
        for k in range(b // BUCKET, (e - 1) // BUCKET + 1):
            for j in buckets[k]:
                if j not in seen:
                    seen.add(j)
                    pb, pe, po, pn = placed[j]
                    if pb < e and b < pe:
                        busy.append((po, po + pn))
        off = 0
        for lo, hi in sorted(busy):
            if off + n <= lo:
                break
            off = max(off, hi)
        placed.append((b, e, off, n))
        for k in range(b // BUCKET, (e - 1) // BUCKET + 1):
            buckets[k].append(len(placed) - 1)
    return placed


def heap_needed(placed, small_live):
    """The largest, over events, of the highest end of the extents live then
    plus the small blocks' live bytes then."""
    events = len(small_live)
    top = [0] * (events + 2)
    for b, e, off, n in placed:
        for t in range(b, min(e, events + 1)):
            if off + n > top[t]:
                top[t] = off + n
    return max(top[t] + small_live[t] for t in range(events))


def main(paths):
    if not paths:
        sys.exit("usage: offline_placement.py TRACE.txt [TRACE.txt ...]")
    ratios = []
    print("%-40s %14s %14s %7s" % ("trace", "peak live M", "heap needed", "H/M"))
    for path in paths:
        extents, small_live, peak = read(path)
        if not peak:
            sys.exit("offline_placement.py: %s: no allocation (a trace in text form, from `pinheap convert --text`?)"
                     % path)
        need = heap_needed(place(extents, len(small_live)), small_live)
        ratios.append(need / peak)
        print("%-40s %14d %14d %7.3f" % (path.split("/")[-1], peak, need, need / peak))
    print("mean H/M over %d trace%s: %.3f" % (len(ratios), "" if len(ratios) == 1 else "s", sum(ratios) / len(ratios)))


if __name__ == "__main__":
    main(sys.argv[1:])
