"""RESULTS.md and the plots of the comparison, from what run.py measured."""
import os
import statistics

import svg

PINHEAP = "pinheap-two-ended"
CAP = 8.0  # H/M plotted up to this

# Why pinheap loses, by kind of figure: what the design does there and what would close it.
WHY = {
    "frag": "pinheap places small blocks in jemalloc's size classes (class rounding) or in page-rounded "
            "extents, and its slabs, taken one by one, sit among the medium blocks (its metadata lies "
            "outside the region); "
            "on the PGAS-like traces best fit scatters the huge arrays: the "
            "ring policy (pinheap-ring) lowers them but is not the default, because it has not been measured on "
            "recorded programs (what would close it: a finer-spaced path for 2 - 14 KiB objects, an array "
            "placement that leaves no room unused at the ring's wrap)",
    "speed-medium": "blocks above 1 MiB take the extent manager's one lock at every malloc and free, and so do "
                    "blocks of 64 KiB - 1 MiB while their thread meets no contention at it; a thread's cache of "
                    "extents holds at most 64 extents and 16 MiB (more would raise the PGAS-like H/M), so a "
                    "thread with a thousand live blocks of up to 1 MiB mostly misses it; a sharded extent manager "
                    "would close it",
    "speed-small": "small objects go through pinheap's per-thread stacks and jemalloc's flagged mallocx/"
                   "sdallocx with an explicit tcache, a few more steps than jemalloc's own fast path",
    "speed-xthread": "a block freed by a thread of another arena goes back to its arena in batches through "
                     "jemalloc's flagged sdallocx, and the allocating thread refills through flagged mallocx: "
                     "jemalloc's general path, where its own malloc and free take the fast one",
    "create": "a FIXED heap maps its region, its page map and its arenas' room at creation",
}



def _fmt_bytes(n):
    for unit, k in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << k:
            return f"{n / (1 << k):.1f} {unit}"
    return f"{n} B"


def _hm(r):
    """H/M from which every probe completed, or None (no heap up to the
    search's maximum completed: inf), or an error."""
    if "error" in r:
        return None
    return r["hm_all_from"] if r.get("all_from") else float("inf")


def _cell_hm(r):
    if r is None:
        return "-"
    if "error" in r:
        return "error"
    if not r.get("all_from"):
        return f"> {r['max'] / r['peak_live']:.0f}" if r.get("peak_live") else "none"
    s, a = r["hm_smallest"], r["hm_all_from"]
    return f"{a:.2f}" if abs(s - a) < 0.005 else f"{a:.2f} ({s:.2f})"


class Report:
    def __init__(self, b):
        self.b = b
        self.raw = b.raw
        self.peers = b.peers
        self.fixed = [n for n, p in self.peers.items() if p["fixed"]]
        self.frag = {(r["trace"], r["peer"]): r for r in self.raw["frag"]}
        self.traces = [(t, f) for t, f, _ in b.trace_list]
        self.losses = []
        self.lines = []

    @staticmethod
    def peer_names(names):
        """The peers among names: pinheap's own variants are not peers."""
        return [n for n in names if not n.startswith("pinheap-")]

    def w(self, s=""):
        self.lines.append(s)

    def table(self, head, rows):
        self.w("| " + " | ".join(head) + " |")
        self.w("|" + "---|" * len(head))
        for r in rows:
            self.w("| " + " | ".join(str(c) for c in r) + " |")
        self.w()

    # ---- fragmentation -----------------------------------------------------
    def groups(self):
        """Rows of the H/M tables: generated kinds by their seeds, the rest
        one by one."""
        out, seen = [], set()
        for t, f in self.traces:
            if f == "generated":
                kind = t.rsplit("-", 1)[0]
                if kind not in seen:
                    seen.add(kind)
                    out.append((kind, f, [u for u, g in self.traces if g == f and u.rsplit("-", 1)[0] == kind]))
            else:
                out.append((t, f, [t]))
        return out

    def group_hm(self, members, peer):
        vals = [_hm(self.frag[(t, peer)]) for t in members if (t, peer) in self.frag]
        if not vals or any(v is None for v in vals):
            return None
        return statistics.mean(vals)

    def fragmentation(self):
        b = self.b
        self.w("## Fragmentation")
        self.w()
        self.w("H/M: the smallest heap from which every larger heap probed completed the trace, over its peak "
               "live bytes M (in brackets, when lower, the smallest heap any probe saw complete); 1.00 is the "
               "physical limit. H is the memory the heap spans: for mimalloc its size rounded down to its 32 MiB "
               "segments, for OSHMEM the mapping Open MPI makes (more than `SHMEM_SYMMETRIC_HEAP_SIZE`). "
               f"Search: doubling from 2 M, bisection to {b.cfg['resolution']:g}% of M, then {b.cfg['scan']} "
               f"probes 1% apart above and {b.cfg['scan'] // 2} below (tools/search.h); \"> N\": no heap up to "
               "N x M completed. Generated workloads: the mean over their seeds.")
        self.w()
        rows = []
        for g, fam, members in self.groups():
            m = statistics.mean(self.frag[(t, PINHEAP)]["peak_live"] for t in members if (t, PINHEAP) in self.frag
                                and "peak_live" in self.frag[(t, PINHEAP)]) if any(
                (t, PINHEAP) in self.frag for t in members) else 0
            cells = []
            for peer in self.fixed:
                if len(members) == 1:
                    cells.append(_cell_hm(self.frag.get((members[0], peer))))
                else:
                    v = self.group_hm(members, peer)
                    cells.append("error" if v is None else f"> {CAP:g}" if v == float("inf") else f"{v:.2f}")
            name = f"{g} ({len(members)} seeds)" if len(members) > 1 else g
            rows.append([name, fam, _fmt_bytes(int(m))] + cells)
        self.table(["trace", "kind", "M"] + self.fixed, rows)
        # ratios
        rows = []
        for g, fam, members in self.groups():
            ph = self.group_hm(members, PINHEAP)
            others = {p: self.group_hm(members, p) for p in self.fixed if not p.startswith("pinheap-")}
            valid = {p: v for p, v in others.items() if v is not None}
            if ph is None or not valid:
                continue
            best = min(valid, key=valid.get)
            ch = valid.get("chapel-fixed")
            rows.append([g, f"{ph:.2f}", f"{best} {valid[best]:.2f}",
                         f"{ph / valid[best]:.2f}" if valid[best] != float("inf") else "0 (the peer never completed)",
                         f"{ph / ch:.2f}" if ch and ch != float("inf") else "-"])
            for p, v in valid.items():
                if v < ph * (1 - b.cfg["resolution"] / 100):
                    self.losses.append(("frag", f"H/M on {g}: pinheap {ph:.2f}, {p} {v:.2f} "
                                                f"(pinheap needs {ph / v:.2f}x its heap)"))
        self.w("pinheap's H/M against the best peer's and against the emulation of Chapel's FIXED heap (jemalloc's "
               "default malloc takes no fixed region; lower is better, so a ratio above 1 is a loss):")
        self.w()
        self.table(["trace", "pinheap", "best peer", "pinheap / best", "pinheap / chapel-fixed"], rows)
        # live at the first failure in 1.1 M
        self.w("Live bytes at the first failure in a heap of 1.1 M, over M (\"ok\": the trace completed; \"no heap\": "
               "a heap that small cannot be made; \"crash\": the job died instead of returning NULL):")
        self.w()
        rows = []
        for t, fam in self.traces:
            cells = []
            for peer in self.fixed:
                r = self.frag.get((t, peer))
                if r is None or "error" in r:
                    cells.append("-")
                elif r.get("crashed_1_1"):
                    cells.append("crash")
                elif not r.get("created_1_1", True):
                    cells.append("no heap")
                else:
                    cells.append("ok" if r["completed_1_1"] else f"{r['fail_live_1_1'] / max(1, r['peak_live']):.2f}")
            rows.append([t] + cells)
            ph = self.frag.get((t, PINHEAP))
            if ph and "error" not in ph and not ph["completed_1_1"]:
                for peer in self.peer_names(self.fixed):
                    r = self.frag.get((t, peer))
                    if r and "error" not in r and (r["completed_1_1"] or r["fail_live_1_1"] > ph["fail_live_1_1"]):
                        mine = ("cannot be made (smaller than its arenas' room)" if not ph.get("created_1_1", True)
                                else f"fails with {ph['fail_live_1_1'] / ph['peak_live']:.2f} M live")
                        self.losses.append(("frag", f"heap of 1.1 M on {t}: pinheap {mine}, {peer} "
                                                    + ("completes" if r["completed_1_1"] else
                                                       f"fails later, with {r['fail_live_1_1'] / r['peak_live']:.2f} M")))
        self.table(["trace"] + self.fixed, rows)
        # end state
        spaced = [p for p in self.fixed if self.peers[p]["space"]]
        self.w("Largest free extent / free bytes at the end (the trace's \"measure\" mark, or its last record), in the "
               "heap of the H/M column, for the peers that can say:")
        self.w()
        rows = []
        for t, fam in self.traces:
            cells = []
            for peer in spaced:
                r = self.frag.get((t, peer))
                ok = r and "error" not in r and r.get("end_has_space") and r.get("end_free")
                cells.append(f"{r['end_largest'] / r['end_free']:.3f}" if ok else "-")
            rows.append([t] + cells)
            ph = self.frag.get((t, PINHEAP))
            if ph and ph.get("end_has_space") and ph.get("end_free"):
                mine = ph["end_largest"] / ph["end_free"]
                for peer in self.peer_names(spaced):
                    r = self.frag.get((t, peer))
                    if r and r.get("end_has_space") and r.get("end_free") and r["end_largest"] / r["end_free"] > mine + 1e-3:
                        self.losses.append(("frag", f"largest free / free at the end of {t}: pinheap {mine:.3f}, "
                                                    f"{peer} {r['end_largest'] / r['end_free']:.3f}"))
        self.table(["trace"] + spaced, rows)
        outside = [r for r in self.raw["frag"] if r.get("outside")]
        if outside:
            self.w("Blocks a peer placed beyond its region (each replay checks every block against the region: "
                   "such a block is freed at once and counted as a failed request, so H/M never credits memory "
                   "taken from elsewhere): " + "; ".join(f"{r['peer']} on {r['trace']}: {r['outside']}"
                                                         for r in outside) + ".")
            self.w()
        errors = [r for r in self.raw["frag"] if "error" in r]
        if errors:
            self.w("Searches that did not run: " + "; ".join(f"{r['peer']} on {r['trace']}: {r['error'][:160]}"
                                                            for r in errors))
            self.w()
        groups = [g for g, _, _ in self.groups()]
        values = {}
        for g, _, members in self.groups():
            for p in self.fixed:
                values[(g, p)] = self.group_hm(members, p)
        self.b.write("hm", svg.bars("H/M per trace: the smallest heap that completes it over its peak live bytes",
                                    groups, self.fixed, values, "H / M (lower is better)",
                                    f"mean over seeds for generated workloads; bars cut at {CAP:g}", cap=CAP))
        self.w("![H/M per trace and allocator](hm.png)")
        self.w()

    # ---- speed -------------------------------------------------------------
    def speed(self):
        b = self.b
        runs = [r for r in self.raw["speed"] if r.get("ok") and r.get("threads")]
        failed_at = {(r["test"], r["threads"], r["peer"]) for r in self.raw["speed"] if not r.get("ok") and r.get("threads")}
        by = {}
        for r in runs:
            by.setdefault((r["test"], r["threads"], r["peer"]), {})[r["rep"]] = r["ops_per_s"]
        names = list(self.peers)
        threads = sorted({r["threads"] for r in runs})
        self.w("## Speed")
        self.w()
        self.w(f"Operations (one allocation or one free) per second, all threads together, each run "
               f"{b.cfg['seconds']:g} s per thread count; the median of {b.cfg['reps']} rounds, the peers in a "
               "different order each round. Ratios: the median over rounds of pinheap's rate over the peer's in "
               "the same round (above 1: pinheap faster). pinheap is the FIXED heap (two-ended); pinheap-simple "
               "has no fixed region. The tests (bench/compare/speed.h):")
        self.w()
        tests = self.raw["tests"]
        for t in tests:
            self.w(f"- `{t}`: {tests[t]}")
        self.w()
        rows, all_rows, panels = [], [], []
        for test in [t for t in tests if any(k[0] == t for k in by)]:
            data = {}
            for n in names:
                pts = [(th, statistics.median(by[(test, th, n)].values())) for th in threads if (test, th, n) in by]
                if pts:
                    data[n] = pts
            panels.append((test, data))
            for th in threads:
                mine = by.get((test, th, PINHEAP))
                if not mine:
                    continue

                def ratio(peer):
                    other = by.get((test, th, peer), {})
                    rs = [mine[k] / other[k] for k in mine if k in other and other[k] > 0]
                    return statistics.median(rs) if rs else None

                je = ratio("jemalloc")
                peers = {n: statistics.median(by[(test, th, n)].values()) for n in names
                         if not n.startswith("pinheap-") and (test, th, n) in by}
                best = max(peers, key=peers.get) if peers else None
                rb = ratio(best) if best else None
                rows.append([test, th, f"{statistics.median(mine.values()) / 1e6:.2f}",
                             f"{je:.2f}" if je else "-", f"{best} {peers[best] / 1e6:.2f}" if best else "-",
                             f"{rb:.2f}" if rb else "-"])
                all_rows.append([test, th] + [f"{statistics.median(by[(test, th, n)].values()) / 1e6:.2f}"
                                              if (test, th, n) in by else "failed" if (test, th, n) in failed_at
                                              else "-" for n in names])
                for n in self.peer_names(names):
                    r = ratio(n)
                    if r is not None and r < 1:
                        cat = "speed-medium" if test in ("medium", "large") else "speed-xthread" if test == "xthread" \
                            else "speed-small"
                        self.losses.append((cat, f"{test} at {th} thread{'s' if th > 1 else ''}: pinheap runs at "
                                                 f"{r:.2f} of {n}'s rate"))
        self.table(["test", "threads", "pinheap Mops/s", "pinheap / jemalloc", "best peer (Mops/s)",
                    "pinheap / best"], rows)
        self.w("Every allocator, millions of operations per second (\"failed\": an allocation failed or a block "
               "was found overwritten; \"-\": not run, as OSHMEM above one thread):")
        self.w()
        self.table(["test", "threads"] + names, all_rows)
        failed = [r for r in self.raw["speed"] if not r.get("ok") and r.get("error")]
        if failed:
            # One line per peer, test and thread count: the rounds it failed
            # in and the first round's message.
            runs = {}
            for r in failed:
                runs.setdefault((r["peer"], r["test"], r.get("threads")), []).append(r["error"])
            self.w("Runs that did not complete:")
            self.w()
            for (peer, test, threads), errors in runs.items():
                self.w(f"- {peer} {test} at {threads} threads, {len(errors)} of the rounds: {errors[0][:200]}")
            self.w()
        self.b.write("speed", svg.lines("Throughput against threads", panels, names,
                                        "operations per second, median of the rounds"))
        self.w("![Throughput against threads](speed.png)")
        self.w()

    def creation(self):
        rows = {}
        for r in self.raw["create"]:
            rows.setdefault(r["peer"], []).append(r)
        if not rows:
            return
        self.w("## Heap creation")
        self.w()
        self.w("Seconds from nothing to a heap over 256 MiB that has served its first `malloc(64)`, without and "
               "with every page written first (prefault), and to destroy it; median of the rounds. The ratios: "
               "the median over rounds of pinheap's time over the peer's in the same round (above 1: pinheap "
               "slower). OSHMEM's heap is made by `shmem_init` inside `oshrun` and is not timed here.")
        self.w()
        mine = {r["rep"]: r for r in rows.get(PINHEAP, [])}

        def ratio(rs, key):
            v = [mine[r["rep"]][key] / r[key] for r in rs if r["rep"] in mine and r[key] > 0]
            return statistics.median(v) if v else None

        out = []
        for p, rs in rows.items():
            c = statistics.median(r["create_s"] for r in rs)
            cp = statistics.median(r["create_prefault_s"] for r in rs)
            d = statistics.median(r["destroy_s"] for r in rs)
            rc, rp = ratio(rs, "create_s"), ratio(rs, "create_prefault_s")
            out.append([p, f"{c * 1e3:.2f} ms", f"{cp * 1e3:.1f} ms", f"{d * 1e3:.2f} ms",
                        f"{rc:.2f}" if rc else "-", f"{rp:.2f}" if rp else "-"])
            if p.startswith("pinheap-"):
                continue
            for what, r in (("creating", rc), ("creating with prefault", rp)):
                if r and r > 1:
                    self.losses.append(("create", f"{what} a heap over 256 MiB: pinheap takes {r:.2f} times "
                                                  f"{p}'s time"))
        self.table(["peer", "create", "create with prefault", "destroy", "pinheap / peer (create)",
                    "pinheap / peer (prefault)"], out)

    def providers(self):
        prov, missing = self.raw.get("providers"), self.raw.get("providers_missing")
        if not prov and not missing:
            return
        self.w("## pinheap's heap creation per provider")
        self.w()
        if missing:
            self.w(f"Not run: {missing}.")
            self.w()
            return
        self.w(f"pinheap's FIXED heap created (its region obtained and registered) and destroyed with each provider "
               f"(`bench/reg_cost.c`, one rank under {prov['flavour']}, median of {prov['runs']} runs); ratio: the "
               "provider's creation time over the local provider's. Pre-faulting commits the whole region, so it "
               "is measured up to 2 GiB.")
        self.w()
        rows = []
        for r in prov["rows"]:
            if "note" in r:
                rows.append([r["provider"], r["size"], "yes" if r["prefault"] else "no", "-", "-", r["note"]])
            else:
                rows.append([r["provider"], r["size"], "yes" if r["prefault"] else "no", f"{r['create_ms']:.3f} ms",
                             f"{r['destroy_ms']:.3f} ms", f"{r['ratio']:.2f}"])
        self.table(["provider", "region", "prefault", "create", "destroy", "ratio"], rows)
        if prov.get("error"):
            self.w(f"The run did not complete: {prov['error']}")
            self.w()

    def pictures(self):
        pic = self.raw.get("pictures")
        if not pic:
            return
        self.w("## The same trace in three heaps")
        self.w()
        self.w(f"`{pic['trace']}` replayed in one heap of {pic['heap'] / (1 << 20):.0f} MiB (pinheap's H): "
               + "; ".join(f"({i + 1}) {c}" for i, c in enumerate(pic["panels"])) + ". Address upwards, the trace's records to the right; beneath, the "
               "fragmentation curve (largest free / free). The dlmalloc panel shows the live blocks as the program "
               "sees them (its headers and the rest count as free).")
        self.w()
        self.w("![Heap pictures side by side](pictures.png)")
        self.w()

    def write(self):
        b, info = self.b, self.raw["info"]
        head = []
        head.append("# pinheap against its peers")
        head.append("")
        if b.mode != "full":
            head.append(f"**Preliminary**: a short run (`run.py --{b.mode}`) on a shared machine, not the figures of "
                        "a full `make bench` on a quiet one; rates on a shared 2-core machine vary by 15% and more "
                        "from run to run.")
            head.append("")
        made_by = {"full": "`make bench`", "quick": "`make bench-quick`", "tiny": "make check's smoke test"}[b.mode]
        head.append(f"Written by `bench/compare/run.py{'' if b.mode == 'full' else ' --' + b.mode}` "
                    f"({made_by}) in {self.raw['seconds']:.0f} s, {info['date']}.")
        head.append("")
        head.append(f"- machine: {info['machine']}")
        head.append("- load average (1, 5, 15 min): " + "; ".join(
            f"{w} {l[0]:.2f} {l[1]:.2f} {l[2]:.2f}" for w, l in self.raw["loads"]))
        head.append(f"- pinheap {info['pinheap']}; jemalloc {info['jemalloc']}, mimalloc {info['mimalloc']}, "
                    f"DPDK {info['dpdk']}, Open MPI {info['openmpi']}, glibc {info['glibc']} (Debian packages)")
        head.append("")
        head.append("## Peers")
        head.append("")
        head.append("| peer | what | fixed region | threads |")
        head.append("|---|---|---|---|")
        for n, p in self.peers.items():
            head.append(f"| {n} | {p['what']} | {'yes' if p['fixed'] else 'no'} | "
                        f"{'any' if p['threads'] else 'one'} |")
        head.append("")
        for r, why in self.raw.get("missing", {}).items():
            head.append(f"Not run: the peers of `bench_compare_{r}`: {why}.")
            head.append("")
        self.fragmentation()
        self.speed()
        self.creation()
        self.providers()
        self.pictures()
        body = self.lines
        self.lines = []
        self.w("## Where pinheap loses")
        self.w()
        if not self.losses:
            self.w("Nowhere in this run.")
        cats = {}
        for cat, text in self.losses:
            cats.setdefault(cat, []).append(text)
        for cat, items in cats.items():
            self.w(f"- **{cat}** ({len(items)}): why: {WHY.get(cat, '')}.")
            for it in items:
                self.w(f"  - {it}")
        self.w()
        with open(os.path.join(b.out, "RESULTS.md"), "w") as f:
            f.write("\n".join(head + self.lines + body) + "\n")


def write(b):
    Report(b).write()
