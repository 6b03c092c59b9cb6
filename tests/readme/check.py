#!/usr/bin/env python3
"""The README's commands and snippets, run as written.

    tests/readme/check.py README.md BUILD_DIR PREFIX    run every block
    tests/readme/check.py --check-only README.md        the markers alone

Every fenced block of the README is preceded, on the line just before its
opening fence, by a marker that says how it is checked:

    <!-- readme-test: run [needs=P,...] [timeout=S] [FILE.c=CONTEXT ...] -->
        sh: run with bash (-e -o pipefail) in a work directory that mirrors
        the source tree, with build/ the build directory and $PREFIX the
        installed prefix; blocks run in README order and share the work
        directory, so a block may use what an earlier one made. FILE.c=NAME
        puts there the program the C block with context NAME was completed
        into. A block whose needs (programs on PATH, or paths in the work
        directory) are missing is skipped, and says so. `oshrun` there
        gets --oversubscribe (2 cores here), and --allow-run-as-root when
        run as root.
    <!-- readme-test: dry-run [needs=...] -->
        sh, for commands too long to run here: `bash -n`, then run with
        `make` as `make -n`, `ctest` as `ctest -N`, and
        PINHEAP_BENCH_DRY_RUN=1, with which the benchmark scripts check
        their arguments and programs and exit without running.
    <!-- readme-test: c NAME [mpi|ofi|shmem] -->
        a C fragment, completed by tests/readme/NAME.c: the fragment's
        leading preprocessor lines, comments and function definitions
        replace the context's line `#pragma readme top`, the rest its line
        `#pragma readme body`; a line `...` becomes README_ELLIPSIS(), a
        no-op unless the context defines it. Built against PREFIX with
        pkg-config (pinheap; mpi: pinheap-mpi-<mpi> with mpicc.<mpi>, for
        each MPI installed; ofi: pinheap-ofi), -Wall -Wextra -Werror, and
        run (mpi: at 2 ranks under tests/mpi/run.sh, the real launchers).
        shmem: an OpenSHMEM program, built with oshcc twice, with
        pinheap-shmem's pkg-config flags and without, and run at 2 PEs
        under oshrun (tests/mpi/run.sh oshmem), the first as it is and the
        second with libpinheap-shmem.so in LD_PRELOAD; with PINHEAP_STATS=1
        each run must print the library's stats line.
    <!-- readme-test: cmake [app.c=NAME] [run=PROGRAM] -->
        the block is a CMakeLists.txt's end; the project (C) finds the
        installed package, builds, and runs PROGRAM.
    <!-- readme-test: output: COMMAND -->
        every non-empty line of the block appears, in order, in what
        COMMAND prints (run as by `run`).
    <!-- readme-test: none: REASON -->
        not run, for the reason given (required).

A fenced block without a marker, a marker without a block, an unknown kind
or option, and an inline code span of the prose that is a command (it
starts with make, bash, cmake, ctest, pkg-config, a launcher, build/,
./, or VAR=value and has arguments) that no run or dry-run block contains:
each fails the check. Exit status 0 when everything passed.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MARK = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(```+|~~~+)\s*([^`\s]*)")
KINDS = {"run", "dry-run", "c", "cmake", "output", "none"}
LANG = {"run": {"sh", "bash"}, "dry-run": {"sh", "bash"}, "c": {"c"}, "cmake": {"cmake"}}
COMMAND_SPAN = re.compile(
    r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*"
    r"(make|bash|sh|cmake|ctest|pkg-config|mpirun\S*|mpiexec\S*|mpicc\S*|oshrun|cc|gcc|build/\S+|\./\S+)\s+\S")
DRY_PRELUDE = "make() { command make -n \"$@\"; }\nctest() { command ctest -N \"$@\"; }\n"
RUN_PRELUDE = ('oshrun() { command oshrun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) "$@"; }\n'
               "export -f oshrun\n")
MPI_FLAVOURS = ("openmpi", "mpich")


class Block:
    def __init__(self, line, lang, text, marker, marker_line):
        self.line, self.lang, self.text = line, lang, text
        self.marker, self.marker_line = marker, marker_line
        self.kind, self.args, self.opts, self.reason = None, [], {}, ""


def parse(path):
    """The fenced blocks, the errors of the markers, and the prose."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, errors, prose = [], [], []
    pending = None  # (line, marker text) of a marker not yet followed by its fence
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        f = FENCE.match(lines[i])
        if m:
            if pending:
                errors.append(f"line {pending[0]}: a readme-test marker not followed by a fenced block")
            pending = (i + 1, m.group(1))
            i += 1
            continue
        if f:
            fence, lang, start = f.group(1), f.group(2), i + 1
            j = i + 1
            while j < len(lines) and not lines[j].startswith(fence):
                j += 1
            if j == len(lines):
                errors.append(f"line {start}: a fenced block that never closes")
            marker = pending if pending and pending[0] == start - 1 else None
            if pending and not marker:
                errors.append(f"line {pending[0]}: a readme-test marker not followed by a fenced block")
            blocks.append(Block(start, lang, "\n".join(lines[i + 1:j]) + "\n",
                                marker[1] if marker else None, marker[0] if marker else None))
            pending = None
            i = j + 1
            continue
        if pending and lines[i].strip():
            errors.append(f"line {pending[0]}: a readme-test marker not followed by a fenced block")
            pending = None
        prose.append((i + 1, lines[i]))
        i += 1
    if pending:
        errors.append(f"line {pending[0]}: a readme-test marker not followed by a fenced block")
    for b in blocks:
        where = f"line {b.line}"
        if b.marker is None:
            errors.append(f"{where}: a fenced block ({b.lang or 'no language'}) without a marker: put "
                          "<!-- readme-test: KIND ... --> on the line before it (see tests/readme/check.py), "
                          "or <!-- readme-test: none: REASON --> if it is not to be run")
            continue
        head, _, rest = b.marker.partition(":") if re.match(r"^(none|output)\s*:", b.marker) else (b.marker, "", "")
        words = head.split()
        b.kind = words[0] if words else ""
        if b.kind not in KINDS:
            errors.append(f"{where}: unknown readme-test kind '{b.kind}' (one of {', '.join(sorted(KINDS))})")
            continue
        b.reason = rest.strip()
        if b.kind in ("none", "output") and not b.reason:
            errors.append(f"{where}: '{b.kind}:' needs {'a reason' if b.kind == 'none' else 'a command'}")
        for w in words[1:]:
            if "=" in w:
                k, v = w.split("=", 1)
                b.opts[k] = v
            else:
                b.args.append(w)
        if b.kind in LANG and b.lang not in LANG[b.kind]:
            errors.append(f"{where}: a '{b.kind}' block must be fenced as {' or '.join(sorted(LANG[b.kind]))}, "
                          f"not '{b.lang}'")
        allowed = {"run": {"needs", "timeout"}, "dry-run": {"needs", "timeout"}, "cmake": {"run"},
                   "c": set(), "output": set(), "none": set()}[b.kind]
        for k in b.opts:
            if k not in allowed and not (k.endswith(".c") and b.kind in ("run", "cmake")):
                errors.append(f"{where}: option '{k}' does not apply to '{b.kind}'")
        if b.kind == "c":
            if len(b.args) < 1 or len(b.args) > 2 or (len(b.args) == 2 and b.args[1] not in ("mpi", "ofi", "shmem")):
                errors.append(f"{where}: 'c NAME [mpi|ofi|shmem]'")
            elif not os.path.exists(os.path.join(HERE, b.args[0] + ".c")):
                errors.append(f"{where}: no context tests/readme/{b.args[0]}.c")
        elif b.args:
            errors.append(f"{where}: unexpected words {' '.join(b.args)}")
    # Commands in the prose must be in a block that runs them.
    tested = " ".join(" ".join(b.text.replace("\\\n", " ").split()) for b in blocks
                      if b.kind in ("run", "dry-run"))
    for n, text in prose:
        for span in re.findall(r"`([^`\n]+)`", text):
            span = " ".join(span.split())
            if "<" in span or not COMMAND_SPAN.match(span):
                continue
            if span not in tested:
                errors.append(f"line {n}: the command `{span}` is in no run or dry-run block: put it in one")
    return blocks, errors


def split_c(text):
    """(top, body): leading preprocessor lines, comments and function
    definitions; the rest."""
    lines = text.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if not s or s.startswith("#") or s.startswith("//"):
            i += 1
        elif s.startswith("/*"):
            while i < len(lines) and "*/" not in lines[i]:
                i += 1
            i += 1
        elif not lines[i][0].isspace() and "(" in s and s.endswith("{"):
            depth = 0
            while i < len(lines):
                depth += lines[i].count("{") - lines[i].count("}")
                i += 1
                if depth == 0:
                    break
        else:
            break
    return lines[:i], lines[i:]


def complete_c(block, readme):
    """The program a C block completes into, with #line directives pointing
    at the README."""
    ctx_path = os.path.join(HERE, block.args[0] + ".c")
    ctx = open(ctx_path, encoding="utf-8").read().split("\n")
    top, body = split_c(block.text)
    body = ["README_ELLIPSIS();" if l.strip() == "..." else l for l in body]
    want = {"#pragma readme top": top, "#pragma readme body": body}
    if sorted(l.strip() for l in ctx if l.strip() in want) != sorted(want):
        raise RuntimeError(f"{ctx_path} must have the lines '#pragma readme top' and '#pragma readme body', once each")
    out = [f"/* README.md line {block.line}, completed by tests/readme/{block.args[0]}.c */"]
    for n, l in enumerate(ctx):
        key = l.strip()
        if key in want:
            first = block.line + 1 + (0 if key.endswith("top") else len(top))
            if key.endswith("body"):
                out += ["#ifndef README_ELLIPSIS", "#define README_ELLIPSIS() ((void)0)", "#endif"]
            out.append(f'#line {first} "{readme}"')
            out += want[key]
            out.append(f'#line {n + 2} "{ctx_path}"')
        else:
            out.append(l)
    return "\n".join(out) + "\n"


class Runner:
    def __init__(self, readme, build, prefix):
        self.readme, self.build, self.prefix = readme, build, prefix
        self.tmp = tempfile.mkdtemp(prefix="pinheap-readme.")
        self.work = os.path.join(self.tmp, "work")
        os.mkdir(self.work)
        for name in os.listdir(ROOT):
            if name not in ("build", ".git"):
                os.symlink(os.path.join(ROOT, name), os.path.join(self.work, name))
        os.symlink(build, os.path.join(self.work, "build"))
        self.libdir = next(os.path.dirname(os.path.join(r, "libpinheap.so")) for r, _, fs in os.walk(prefix)
                           if "libpinheap.so" in fs)
        self.env = dict(os.environ, PREFIX=prefix)
        for k in ("PINHEAP_BENCH_DRY_RUN", "PKG_CONFIG_PATH", "LD_LIBRARY_PATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
            self.env.pop(k, None)
        self.programs = {}  # context name -> completed source
        self.failures = self.ran = self.skipped = 0
        self.started = time.monotonic()

    def say(self, block, what):
        spent = time.monotonic() - self.started
        self.started = time.monotonic()
        print(f"README.md line {block.line} ({block.marker}): {what} ({spent:.1f} s)", flush=True)

    def fail(self, block, what, output=""):
        self.failures += 1
        if output:
            sys.stdout.write("\n".join(output.rstrip("\n").split("\n")[-40:]) + "\n")
        self.say(block, "FAILED: " + what)

    def sh(self, cmd, env=None, timeout=120, cwd=None):
        try:
            p = subprocess.run(["bash", "-c", cmd], cwd=cwd or self.work, env=env or self.env, timeout=timeout,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
            return p.returncode, p.stdout
        except subprocess.TimeoutExpired as e:
            return 124, (e.stdout or b"").decode(errors="replace") + f"\n(timed out after {timeout} s)"

    def pc(self, module):
        env = dict(self.env, PKG_CONFIG_PATH=os.path.join(self.libdir, "pkgconfig"))
        rc, out = self.sh(f"pkg-config --cflags --libs {module}", env=env)
        if rc:
            raise RuntimeError(f"pkg-config {module}: {out.strip()}")
        return out.strip() + f" -Wl,-rpath,{self.libdir}"

    def missing(self, block):
        return [n for n in block.opts.get("needs", "").split(",") if n and not shutil.which(n)
                and not os.path.exists(os.path.join(self.work, n))]

    def bind(self, block):
        for k, v in block.opts.items():
            if k.endswith(".c"):
                if v not in self.programs:
                    raise RuntimeError(f"{k}={v}: no C block with context {v} before this one")
                with open(os.path.join(self.work, k), "w") as f:
                    f.write(self.programs[v])

    def run_c(self, b):
        name, mode = b.args[0], (b.args[1] if len(b.args) > 1 else "")
        src = complete_c(b, self.readme)
        self.programs[name] = src
        d = os.path.join(self.tmp, "c-" + name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name + ".c")
        with open(path, "w") as f:
            f.write(src)
        flags = "-std=c11 -Wall -Wextra -Werror"
        if mode == "mpi":
            flavours = [f for f in MPI_FLAVOURS if shutil.which("mpicc." + f)
                        and os.path.exists(os.path.join(self.libdir, f"libpinheap-mpi-{f}.so"))]
            if not flavours:
                self.skipped += 1
                return self.say(b, "skipped: no MPI provider installed")
            for f in flavours:
                exe = os.path.join(d, f"{name}_{f}")
                rc, out = self.sh(f"mpicc.{f} {flags} -o {exe} {path} {self.pc('pinheap-mpi-' + f)}")
                if rc:
                    return self.fail(b, f"mpicc.{f} failed", out)
                rc, out = self.sh(f"bash tests/mpi/run.sh {f} 2 {exe}", timeout=90)
                if rc:
                    return self.fail(b, f"{name}_{f} at 2 ranks exited {rc}", out)
                self.say(b, f"built with mpicc.{f}, ran at 2 ranks")
        elif mode == "shmem":
            if not shutil.which("oshcc") or not os.path.exists(os.path.join(self.libdir, "libpinheap-shmem.so")):
                self.skipped += 1
                return self.say(b, "skipped: no oshcc, or libpinheap-shmem not installed")
            linked, plain = os.path.join(d, name + "_linked"), os.path.join(d, name)
            for exe, libs in ((linked, self.pc("pinheap-shmem")), (plain, "")):
                rc, out = self.sh(f"oshcc {flags} -o {exe} {path} {libs}")
                if rc:
                    return self.fail(b, "oshcc failed", out)
            preload = os.path.join(self.libdir, "libpinheap-shmem.so")
            for how, cmd in (("linked", linked), ("preloaded", f"env LD_PRELOAD={preload} {plain}")):
                rc, out = self.sh(f"PINHEAP_STATS=1 bash tests/mpi/run.sh oshmem 2 {cmd}", timeout=90)
                if rc:
                    return self.fail(b, f"{name} ({how}) at 2 PEs exited {rc}", out)
                if "libpinheap-shmem: symmetric heap of 2 PEs" not in out:
                    return self.fail(b, f"{name} ({how}): the library did not serve its calls (no stats line)", out)
            self.say(b, "built with oshcc, ran at 2 PEs with libpinheap-shmem linked and preloaded")
        else:
            exe = os.path.join(d, name)
            rc, out = self.sh(f"cc {flags} -o {exe} {path} {self.pc('pinheap-ofi' if mode == 'ofi' else 'pinheap')}")
            if rc:
                return self.fail(b, "cc failed", out)
            rc, out = self.sh(exe, env=dict(self.env, FI_TCP_IFACE="lo"), timeout=90)
            if rc:
                return self.fail(b, f"{name} exited {rc}", out)
            self.say(b, "built and ran")
        self.ran += 1

    def run_cmake(self, b):
        d = os.path.join(self.tmp, f"cmake-{b.line}")
        os.makedirs(d)
        sources = [k for k in b.opts if k.endswith(".c")]
        for k in sources:
            with open(os.path.join(d, k), "w") as f:
                f.write(self.programs[b.opts[k]])
        with open(os.path.join(d, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.16)\nproject(app C)\n")
            f.write(f"add_executable(app {' '.join(sources)})\n" if sources else "")
            f.write(b.text)
        rc, out = self.sh(f"cmake -S {d} -B {d}/build -DCMAKE_PREFIX_PATH={self.prefix} "
                          f"-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF && cmake --build {d}/build", timeout=180)
        if rc:
            return self.fail(b, "configuring or building failed", out)
        if "run" in b.opts:
            rc, out = self.sh(os.path.join(d, "build", b.opts["run"]))
            if rc:
                return self.fail(b, f"{b.opts['run']} exited {rc}", out)
        self.say(b, "configured, built" + (f" and ran {b.opts['run']}" if "run" in b.opts else ""))
        self.ran += 1

    def run_sh(self, b, dry):
        gone = self.missing(b)
        if gone:
            self.skipped += 1
            return self.say(b, f"skipped: needs {', '.join(gone)}")
        self.bind(b)
        script = os.path.join(self.tmp, f"block-{b.line}.sh")
        with open(script, "w") as f:
            f.write("set -eo pipefail\n" + (DRY_PRELUDE if dry else RUN_PRELUDE) + b.text)
        rc, out = self.sh(f"bash -n {script}")
        if rc:
            return self.fail(b, "bash -n: not valid shell", out)
        env = dict(self.env, PINHEAP_BENCH_DRY_RUN="1") if dry else self.env
        rc, out = self.sh(f"bash {script}", env=env, timeout=int(b.opts.get("timeout", 120)))
        if rc:
            return self.fail(b, f"exited {rc}", out)
        self.say(b, "dry run passed" if dry else "ran")
        self.ran += 1

    def run_output(self, b):
        rc, out = self.sh(b.reason)
        if rc:
            return self.fail(b, f"'{b.reason}' exited {rc}", out)
        have = [" ".join(l.split()) for l in out.split("\n")]
        at = 0
        for want in (" ".join(l.split()) for l in b.text.split("\n") if l.strip()):
            while at < len(have) and have[at] != want:
                at += 1
            if at == len(have):
                return self.fail(b, f"'{b.reason}' does not print, in this order: {want}", out)
            at += 1
        self.say(b, f"matches what '{b.reason}' prints")
        self.ran += 1

    def run(self, blocks):
        for b in blocks:
            try:
                if b.kind == "none":
                    self.say(b, "not run: " + b.reason)
                elif b.kind == "c":
                    self.run_c(b)
                elif b.kind == "cmake":
                    self.run_cmake(b)
                elif b.kind in ("run", "dry-run"):
                    self.run_sh(b, b.kind == "dry-run")
                elif b.kind == "output":
                    self.run_output(b)
            except RuntimeError as e:
                self.fail(b, str(e))
        shutil.rmtree(self.tmp, ignore_errors=True)
        print(f"README: {self.ran} blocks checked, {self.skipped} skipped, {self.failures} failed")
        return 1 if self.failures else 0


def main(argv):
    if len(argv) == 2 and argv[0] == "--check-only":
        blocks, errors = parse(argv[1])
    elif len(argv) == 3:
        blocks, errors = parse(argv[0])
    else:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    for e in errors:
        print(f"README: {e}")
    if errors:
        return 1
    if argv[0] == "--check-only":
        print(f"README: {len(blocks)} blocks, every one marked")
        return 0
    return Runner(os.path.abspath(argv[0]), os.path.abspath(argv[1]), os.path.abspath(argv[2])).run(blocks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
