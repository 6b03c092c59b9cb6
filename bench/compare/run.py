#!/usr/bin/env python3
"""The comparison of allocators: every peer run for real, side by side.

    bench/compare/run.py [--quick | --tiny] [--build DIR] [--out DIR]
                         [--jobs N] [--reps K] [--seconds S]

Runs the runners of bench/compare (compare.h) from the build directory:
  1. traces: generated workloads (pinheap gen: pgas, server, grow, 5 seeds
     each), the adversarial sequences (seq700, seq1000, tiny, churn), and
     three Debian programs recorded with pinheap record (sqlite3, python3,
     sort --parallel=2); each prepared for replay;
  2. fragmentation, for every peer that takes a fixed region and every
     trace: H/M (the smallest heap that completed, and the heap from which
     every larger probe completed, over peak live bytes M), the live bytes
     at the first failure in a heap of 1.1 M, largest free / free at the end
     (tools/search.h; replays are deterministic, so these run N at a time);
  3. speed: every test of speed.h at 1 .. cores threads, K rounds, the
     peers in a different order each round (side by side, alternating),
     medians and the medians of the ratios of runs of the same round;
  4. heap creation over 256 MiB with and without prefault, K rounds; and
     pinheap's FIXED heap created with each provider (bench/reg_cost.c);
  5. pictures of one trace under pinheap's bump policy, dlmalloc (OSHMEM's
     ptmalloc) and pinheap side by side.
Writes OUT/RESULTS.md (tables, with the machine, versions and load
averages), OUT/*.svg and OUT/*.png (rsvg-convert), OUT/raw.json.

--quick is a subset (one seed per workload, fewer rounds): `make
bench-quick`. --tiny runs the machinery on tiny inputs (make check's
bench_compare_smoke). With PINHEAP_BENCH_DRY_RUN=1 it checks its arguments
and programs, says what it would run, and exits 0.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import report  # noqa: E402
import svg  # noqa: E402

MiB = 1 << 20
MAX_RATIO = 16  # the search gives up above this many times M
RUNNERS = ["pinheap", "glibc", "mimalloc", "dpdk", "oshmem"]
# Why a runner may be missing from the build (bench/compare/CMakeLists.txt
# builds it only when its package was found at configure time).
NEEDS = {
    "mimalloc": "mimalloc (Debian libmimalloc-dev) was not found when the build was configured",
    "dpdk": "libdpdk (Debian libdpdk-dev, pkg-config libdpdk) was not found when the build was configured",
    "oshmem": "Open MPI's OpenSHMEM (oshcc, Debian libopenmpi-dev and openmpi-bin) was not found when the build "
              "was configured",
}
PINHEAP = "pinheap-two-ended"  # the default FIXED heap: the figures that say "pinheap"

# name: (kind, gen arguments) for generated traces; the sizes are scaled so
# that a replay takes well under a second for every peer.
MODES = {
    "full": dict(seeds=[1, 2, 3, 4, 5], reps=5, seconds=0.25, scale=1, jobs=2, scan=4, resolution=1.0, tests=None,
                 steps={"pgas": 1000, "server": 10000, "grow": 1000}, recorded=["sqlite3", "python3", "sort"],
                 adversarial=["seq700", "seq1000", "tiny", "churn"]),
    "quick": dict(seeds=[1], reps=3, seconds=0.1, scale=1, jobs=2, scan=2, resolution=2.0,
                  tests=["small1k", "medium", "xthread"], steps={"pgas": 500, "server": 5000},
                  recorded=["sqlite3"], adversarial=["tiny"]),
    # The adversarial sequences are left out: their blocks are of 500 MiB
    # and more whatever the heap, and DPDK takes seconds per replay of them.
    "tiny": dict(seeds=[1], reps=1, seconds=0.02, scale=1 / 16, jobs=2, scan=0, resolution=10.0, tests=None,
                 steps={"pgas": 40, "server": 300}, recorded=["sort"], adversarial=[]),
}
GEN_HEAP = {"full": "256m", "quick": "256m", "tiny": "64m"}

def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, env=None, timeout=900, check=True, stdin=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(cmd, env=e, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def oshrun_words(component):
    w = ["oshrun", "-np", "1", "--mca", "osc", "^rdma", "--mca", "memheap", component]
    if os.geteuid() == 0:
        w.append("--allow-run-as-root")
    return w


class Bench:
    def __init__(self, args):
        self.a = args
        self.mode = "tiny" if args.tiny else "quick" if args.quick else "full"
        self.cfg = dict(MODES[self.mode])
        if args.reps:
            self.cfg["reps"] = args.reps
        if args.seconds:
            self.cfg["seconds"] = args.seconds
        if args.jobs:
            self.cfg["jobs"] = args.jobs
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        self.tool = os.path.join(self.build, "pinheap")
        self.bindir = os.path.join(self.build, "bench", "compare")
        self.cores = os.cpu_count() or 1
        self.loads = []
        self.raw = {"mode": self.mode, "frag": [], "speed": [], "create": [], "pictures": {}}

    # ---- set-up ------------------------------------------------------------
    def runner(self, name):
        return os.path.join(self.bindir, f"bench_compare_{name}")

    def find_peers(self):
        self.peers = {}
        self.missing = {}
        for r in RUNNERS:
            exe = self.runner(r)
            if not os.access(exe, os.X_OK):
                self.missing[r] = NEEDS.get(r, "not built")
                log(f"not run: the peers of bench_compare_{r}: {self.missing[r]}")
                continue
            for p in json_lines(run([exe, "peers"]).stdout):
                p["runner"] = exe
                self.peers[p["name"]] = p
            if r == "pinheap":
                self.tests = {t["name"]: t for t in json_lines(
                    run([exe, "tests", "--scale", str(self.cfg["scale"])]).stdout)
                    if not self.cfg["tests"] or t["name"] in self.cfg["tests"]}
        if PINHEAP not in self.peers or "jemalloc" not in self.peers:
            raise SystemExit(f"run.py: no bench_compare_pinheap in {self.bindir}: build first")

    def note_load(self, what):
        self.loads.append((what, os.getloadavg()))

    def versions(self):
        def pkg(name):
            p = run(["dpkg-query", "-W", "-f", "${Version}", name], check=False)
            return p.stdout.strip() or "not installed"

        commit = run(["git", "-C", SRC, "describe", "--always", "--dirty"], check=False).stdout.strip()
        cpu = "unknown"
        if os.path.exists("/proc/cpuinfo"):
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem = 0
        if os.path.exists("/proc/meminfo"):
            mem = int(open("/proc/meminfo").readline().split()[1]) // 1024
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()}: {cpu}, {self.cores} cores, {mem} MiB, {platform.system()} "
                       f"{platform.release()}",
            "pinheap": commit or "unknown",
            "jemalloc": pkg("libjemalloc2"), "mimalloc": pkg("libmimalloc2.0"), "dpdk": pkg("libdpdk-dev"),
            "openmpi": pkg("libopenmpi3"), "glibc": pkg("libc6"),
        }

    # ---- traces ------------------------------------------------------------
    def traces(self, work):
        cfg, heap = self.cfg, GEN_HEAP[self.mode]
        out = []
        for kind, steps in cfg["steps"].items():
            for s in cfg["seeds"]:
                out.append((f"{kind}-{s}", "generated", [self.tool, "gen", kind, "--seed", str(s), "--heap", heap,
                                                          "--steps", str(steps)]))
        for kind in cfg["adversarial"]:
            out.append((kind, "adversarial", [self.tool, "gen", kind, "--heap", heap]))
        made = []
        for name, family, cmd in out:
            path = os.path.join(work, name + ".trace")
            run(cmd + ["-o", path])
            made.append((name, family, path))
        env = {"PINHEAP_MODE": "fixed", "PINHEAP_SIZE": "2g"}
        sort_in = os.path.join(work, "sort.in")
        lines = 300000 if self.mode != "tiny" else 2000
        with open(sort_in, "w") as f:
            for i in range(1, lines + 1):
                f.write(f"{(i * 7919) % 100003} {i}\n")
        programs = {
            "sqlite3": (["sqlite3", ":memory:"], os.path.join(SRC, "tests", "preload", "table.sql")),
            "python3": (["python3", os.path.join(SRC, "tests", "preload", "dicts.py")], None),
            "sort": (["sort", "--parallel=2", "-S", "50M", sort_in], None),
        }
        for name in cfg["recorded"]:
            cmd, stdin = programs[name]
            path = os.path.join(work, name + ".trace")
            with open(stdin or os.devnull) as f:
                run([self.tool, "record", "-o", path, "--"] + cmd, env=env, stdin=f)
            made.append((name, "recorded", path))
        self.trace_list = []
        for name, family, path in made:
            ops = path[:-len(".trace")] + ".ops"
            run([self.runner("pinheap"), "prepare", path, ops])
            self.trace_list.append((name, family, ops))
        return self.trace_list

    # ---- fragmentation -----------------------------------------------------
    def frag_one(self, job):
        name, family, ops, peer = job
        p = self.peers[peer]
        cmd = [p["runner"], "frag", ops, "--peer", peer, "--scan", str(self.cfg["scan"]), "--resolution",
               str(self.cfg["resolution"]), "--max-ratio", str(MAX_RATIO)]
        r = run(cmd, check=False, timeout=1800)
        got = json_lines(r.stdout)
        res = got[0] if got and r.returncode == 0 else {"peer": peer, "error": r.stderr.strip()[-500:]}
        res.update(trace=name, family=family)
        return res

    def fragmentation(self):
        fixed = [n for n, p in self.peers.items() if p["fixed"]]
        jobs = [(t, f, o, peer) for t, f, o in self.trace_list for peer in fixed]
        # The slowest first, so that the pool ends together: external peers
        # (a process, or an oshrun job, per replay), then by trace size.
        jobs.sort(key=lambda j: (not self.peers[j[3]]["external"], -os.path.getsize(j[2])))
        log(f"fragmentation: {len(jobs)} searches ({len(self.trace_list)} traces x {len(fixed)} peers), "
            f"{self.cfg['jobs']} at a time")
        self.note_load("before fragmentation")
        with concurrent.futures.ThreadPoolExecutor(self.cfg["jobs"]) as pool:
            for res in pool.map(self.frag_one, jobs):
                self.raw["frag"].append(res)
        self.note_load("after fragmentation")

    # ---- speed and creation ------------------------------------------------
    def speed_one(self, job):
        rep, test, peer = job
        p, secs = self.peers[peer], self.cfg["seconds"]
        cmd = [p["runner"], "speed", "--peer", peer, "--test", test, "--seconds", str(secs), "--seed", str(rep + 1),
               "--threads", f"1-{self.cores}" if p["threads"] else "1", "--scale", str(self.cfg["scale"])]
        env = {}
        if peer.startswith("oshmem-"):
            cmd = oshrun_words(peer.split("-", 1)[1]) + cmd
            env["SHMEM_SYMMETRIC_HEAP_SIZE"] = str(self.tests[test]["region"])
        r = run(cmd, env=env, check=False, timeout=600)
        out = json_lines(r.stdout)
        if r.returncode != 0:
            out.append({"peer": peer, "test": test, "ok": False, "error": r.stderr.strip()[-300:], "threads": 0})
        for line in out:
            line["rep"] = rep
        return out

    def speed(self):
        reps, secs = self.cfg["reps"], self.cfg["seconds"]
        names = list(self.peers)
        jobs = [(rep, test, peer) for rep in range(reps) for test in self.tests
                for peer in names[rep % len(names):] + names[:rep % len(names)]]
        # One run at a time, so that runs do not slow each other; the tiny
        # mode checks the machinery only, and runs them side by side.
        at_once = self.cfg["jobs"] if self.mode == "tiny" else 1
        log(f"speed: {len(self.tests)} tests x {len(names)} peers x {reps} rounds, {secs} s per thread count, "
            f"{at_once} at a time")
        self.note_load("before speed")
        with concurrent.futures.ThreadPoolExecutor(at_once) as pool:
            for out in pool.map(self.speed_one, jobs):
                self.raw["speed"] += out
        self.note_load("after speed")

    def creation(self):
        peers = [n for n, p in self.peers.items() if p["fixed"] and not n.startswith("oshmem-")]
        log(f"creation: {len(peers)} peers x {self.cfg['reps']} rounds")
        for rep in range(self.cfg["reps"]):
            for peer in peers[rep % len(peers):] + peers[:rep % len(peers)]:
                r = run([self.peers[peer]["runner"], "create", "--peer", peer, "--size", str(256 * MiB),
                         "--reps", "1"], check=False)
                for line in json_lines(r.stdout):
                    line["rep"] = rep
                    self.raw["create"].append(line)

    def providers(self):
        """pinheap's FIXED heap made with each provider (bench/reg_cost.c:
        local, MPI window, libfabric tcp and shm), at one rank under the MPI
        tests' launcher, which bounds the run and cleans /dev/shm."""
        exe = next((os.path.join(self.build, "bench", f"reg_cost_{f}") for f in ("openmpi", "mpich")
                    if os.access(os.path.join(self.build, "bench", f"reg_cost_{f}"), os.X_OK)), None)
        if not exe:
            self.raw["providers_missing"] = ("reg_cost was not built (it needs an MPI and libfabric, Debian "
                                             "libopenmpi-dev or libmpich-dev, and libfabric-dev)")
            log(f"not run: heap creation per provider: {self.raw['providers_missing']}")
            return
        flavour = exe.rsplit("_", 1)[1]
        log(f"creation per provider: reg_cost under {flavour}, median of {self.cfg['reps']} runs")
        r = run(["bash", os.path.join(SRC, "tests", "mpi", "run.sh"), flavour, "1", exe, str(self.cfg["reps"])],
                env={"FI_TCP_IFACE": "lo"}, check=False, timeout=600)
        rows = []
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 6 and f[2] in ("no", "yes"):
                rows.append({"provider": f[0], "size": f[1], "prefault": f[2] == "yes", "create_ms": float(f[3]),
                             "destroy_ms": float(f[4]), "ratio": float(f[5])})
            elif len(f) > 3 and f[3] == "-":
                rows.append({"provider": f[0], "size": f[1], "prefault": f[2] == "yes", "note": " ".join(f[4:])})
        self.raw["providers"] = {"flavour": flavour, "runs": self.cfg["reps"], "rows": rows}
        if r.returncode != 0 or not rows:
            self.raw["providers"]["error"] = (r.stderr.strip() or r.stdout.strip())[-300:]

    # ---- pictures ----------------------------------------------------------
    def pictures(self, work):
        """pgas (seed 1) in one heap under pinheap's bump policy, dlmalloc
        (OSHMEM ptmalloc) and pinheap: the heap is pinheap's all-larger bound,
        so that pinheap completes and the others show where they stand."""
        name = "pgas-1"
        ops = next((o for t, f, o in self.trace_list if t == name), None)
        res = {r["peer"]: r for r in self.raw["frag"] if r.get("trace") == name}
        if not ops or not res.get(PINHEAP, {}).get("all_from"):
            return
        heap = res[PINHEAP]["all_from"]
        trace = ops[:-4] + ".trace"
        pics = []
        for policy in ["bump", "two-ended"]:
            svgf = os.path.join(work, f"pic-{policy}.svg")
            subprocess.run([self.tool, "replay", "--heap", str(heap), "--policy", policy, "--svg", svgf,
                            os.path.basename(trace)], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if os.path.exists(svgf):
                pics.append((f"pinheap, {policy} policy", open(svgf).read()))
        dl = "oshmem-ptmalloc" if "oshmem-ptmalloc" in self.peers else None
        if dl:
            cols = os.path.join(work, "pic-dlmalloc.cols")
            env = {"SHMEM_SYMMETRIC_HEAP_SIZE": str(heap)}
            run(oshrun_words("ptmalloc") + [self.peers[dl]["runner"], "replay", ops, "--peer", dl, "--heap", str(heap),
                                             "--columns", cols], env=env, check=False)
            svgf = os.path.join(work, "pic-dlmalloc.svg")
            if os.path.exists(cols):
                run([self.runner("pinheap"), "draw", cols, svgf, "--title", f"{name} under dlmalloc",
                     "--subtitle", f"OSHMEM shmem_malloc, memheap ptmalloc, heap {heap} bytes: live blocks as the "
                                   "program sees them"])
                pics.insert(1, ("dlmalloc (OSHMEM ptmalloc)", open(svgf).read()))
        if pics:
            self.write("pictures", svg.side_by_side(f"{name}: one heap of {heap / MiB:.0f} MiB", pics))
            self.raw["pictures"] = {"trace": name, "heap": heap, "panels": [c for c, _ in pics]}

    # ---- output ------------------------------------------------------------
    def write(self, stem, text):
        path = os.path.join(self.out, stem + ".svg")
        with open(path, "w") as f:
            f.write(text)
        if shutil.which("rsvg-convert"):
            run(["rsvg-convert", path, "-o", os.path.join(self.out, stem + ".png")], check=False)

    def main(self):
        os.makedirs(self.out, exist_ok=True)
        t0 = time.time()
        self.find_peers()
        self.info = self.versions()
        log(f"mode {self.mode}: peers {', '.join(self.peers)}")
        with tempfile.TemporaryDirectory(prefix="pinheap-compare.") as work:
            self.traces(work)
            log(f"traces: {', '.join(t for t, _, _ in self.trace_list)}")
            self.fragmentation()
            self.speed()
            self.creation()
            self.providers()
            self.pictures(work)
        self.raw["seconds"] = time.time() - t0
        self.raw["tests"] = {t: v["what"] for t, v in self.tests.items()}
        self.raw["info"] = self.info
        self.raw["loads"] = self.loads
        self.raw["missing"] = self.missing
        with open(os.path.join(self.out, "raw.json"), "w") as f:
            json.dump(self.raw, f, indent=1)
        report.write(self)
        log(f"done in {self.raw['seconds']:.0f} s: {os.path.join(self.out, 'RESULTS.md')}")
        return self.verify()

    def verify(self):
        """What every run must have: a result of every search and of every
        speed test of pinheap's FIXED heap, and every file of the report.
        Problems are printed; 1 when there are any."""
        bad = [f"search {r['peer']} on {r['trace']}: {r['error'][:200]}" for r in self.raw["frag"] if "error" in r]
        done = {(r["test"], r["threads"]) for r in self.raw["speed"] if r["peer"] == PINHEAP and r.get("ok")}
        bad += [f"speed {PINHEAP} {t}: no run completed" for t in self.tests if not any(k[0] == t for k in done)]
        # Every peer built must have run: a speed run that completed, and
        # (with a fixed region) a search.
        bad += [f"speed {n}: no run of any test completed" for n in self.peers
                if not any(r["peer"] == n and r.get("ok") for r in self.raw["speed"])]
        bad += [f"fragmentation {n}: no search" for n, p in self.peers.items()
                if p["fixed"] and not any(r["peer"] == n and "error" not in r for r in self.raw["frag"])]
        bad += [f"speed {r['peer']} {r['test']} at {r.get('threads')} threads: {r['error'][:200]}"
                for r in self.raw["speed"] if r["peer"] == PINHEAP and not r.get("ok")]
        files = ["RESULTS.md", "hm.svg", "speed.svg"] + (["hm.png", "speed.png"] if shutil.which("rsvg-convert") else [])
        prov = self.raw.get("providers", {})
        if prov.get("error"):
            bad.append(f"heap creation per provider: {prov['error'][:200]}")
        bad += [f"{f} not written" for f in files if not os.path.exists(os.path.join(self.out, f))]
        for b in bad:
            print(f"run.py: {b}", file=sys.stderr)
        return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="a subset (make bench-quick)")
    g.add_argument("--tiny", action="store_true", help="the machinery on tiny inputs (the smoke test)")
    ap.add_argument("--build", default=os.path.join(SRC, "build"), help="the CMake build directory")
    ap.add_argument("--out", default=os.path.join(SRC, "bench", "results"), help="where results go")
    ap.add_argument("--jobs", type=int, help="fragmentation searches at a time")
    ap.add_argument("--reps", type=int, help="rounds of the speed and creation runs")
    ap.add_argument("--seconds", type=float, help="seconds per speed run and thread count")
    args = ap.parse_args()
    b = Bench(args)
    if os.environ.get("PINHEAP_BENCH_DRY_RUN"):
        b.find_peers()
        print(f"run.py: dry run: mode {b.mode}, peers {', '.join(b.peers)}; results into {b.out}")
        return 0
    return b.main()


if __name__ == "__main__":
    sys.exit(main())
