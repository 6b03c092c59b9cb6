#!/usr/bin/env python3
"""Checks the library's layers from its sources, and prints what it found.

A module of the library is a name m with src/m.c and/or src/m.h. Its
dependencies are derived from the sources, comments and strings left out:
  - includes: a file of m includes "x.h", x a module;
  - calls: a file of m calls a function defined in a file of x (a
    definition starts a line: its return type, its name, its parameters),
    pinheap_* functions of the public face included.
Every module sits on one layer of LAYERS below, lowest first. The check fails
on an edge to a module of the same or a higher layer (an upward call or
include), on a cycle, on a module no layer names, and on a function whose
name does not start with its module's prefix ("m_", or "pinheap_" for the
exported ones): a name says where it lives.

It also checks that the code over the public face includes none of the
library's internal headers (preload/, comm/, shmem/, tools/, record/,
bench/, examples/: their own headers and include/ only), and that every
source file (.c, .h, .py, .sh, CMake) has at most 600 lines, or says at its
top (first 40 lines) why it is "longer than 600 lines".

  scripts/layers.py [--graph]     --graph: print every module's edges too
Exit status 0 when every check passes, 1 otherwise.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))

# Lowest first. A module may use only modules of lower layers.
LAYERS = [
    ("leaves: helpers without state, valgrind's annotations", ["util", "track"]),
    ("the error text, faulting pages in", ["error", "prefault"]),
    ("assertions", ["ph_assert"]),
    ("structures", ["tree", "meta", "gate", "sizeclass", "env", "xcache", "inbound"]),
    ("structures over trees", ["sizeidx"]),
    ("indexes over them", ["em", "pagemap", "canary", "local"]),
    ("the provider wrapper", ["provider"]),
    ("jemalloc's extent hooks", ["hooks"]),
    ("a heap's memory", ["space"]),
    ("per-thread caches, arenas, DYNAMIC memory", ["thread", "arenas", "dynamic"]),
    ("the small objects' keys, the fine path", ["key", "fine"]),
    ("the heap's core", ["heap"]),
    ("over the core: debugging aids, fork, walk", ["debug", "fork", "walk"]),
    ("the out-of-memory report", ["report"]),
    ("options", ["options"]),
    ("the public face", ["api", "phase"]),
    ("the symmetric heaps' watchdog", ["watchdog"]),
    ("over the public face: symmetric heaps", ["sym"]),
]

# Folders built on the public headers (include/) and their own.
OVER_PUBLIC = ["preload", "comm", "shmem", "tools", "record", "bench", "examples"]
# Folders whose headers another folder may use as its own.
SHARED_WITH = {"record": ["tools"]}

SOURCE_EXT = (".c", ".h", ".py", ".sh", ".cmake")
LONG_MARK = "longer than 600 lines"
MAX_LINES = 600


ATTRIBUTE = re.compile(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)")


def strip(text):
    """The C text without comments, string and character literals, and
    attributes."""
    return ATTRIBUTE.sub(" ", strip_literals(text))


def strip_literals(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


DEFINITION = re.compile(r"^(?!static inline\b)[A-Za-z_][\w \*\(\)\",]*?\b([a-z_]\w*)\(([^;{]*?)\)\s*\{", re.M)
INLINE = re.compile(r"^static inline [\w \*]*?\b([a-z_]\w*)\(", re.M)
CALL = re.compile(r"\b([a-z_]\w*)\s*\(")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "defined", "_Alignof", "__attribute__"}


def modules():
    found = {}
    for f in sorted(os.listdir(os.path.join(ROOT, "src"))):
        m, ext = os.path.splitext(f)
        if ext in (".c", ".h"):
            found.setdefault(m, []).append(os.path.join("src", f))
    return found


def analyse(mods):
    texts = {p: strip(open(os.path.join(ROOT, p), errors="replace").read()) for ps in mods.values() for p in ps}
    raw = {p: open(os.path.join(ROOT, p), errors="replace").read() for ps in mods.values() for p in ps}
    defined, misnamed = {}, []
    for m, paths in mods.items():
        for p in paths:
            names = [d.group(1) for d in DEFINITION.finditer(texts[p]) if d.group(1) not in KEYWORDS]
            names += INLINE.findall(texts[p])
            for name in names:
                defined.setdefault(name, m)
                if not (name.startswith(m + "_") or name.startswith("pinheap_")):
                    misnamed.append((p, name))
    edges = {m: {} for m in mods}
    for m, paths in mods.items():
        for p in paths:
            for inc in INCLUDE.findall(raw[p]):
                x = os.path.splitext(os.path.basename(inc))[0]
                if x in mods and x != m:
                    edges[m].setdefault(x, set()).add("includes " + inc)
            for name in CALL.findall(texts[p]):
                x = defined.get(name)
                if x and x != m:
                    edges[m].setdefault(x, set()).add("calls " + name)
    return edges, misnamed


def cycles(edges):
    """Modules on a cycle, found by Tarjan's strongly connected components."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check_public_folders(problems):
    internal = {f for f in os.listdir(os.path.join(ROOT, "src")) if f.endswith(".h")}
    public = set(os.listdir(os.path.join(ROOT, "include")))
    for folder in OVER_PUBLIC:
        top = os.path.join(ROOT, folder)
        if not os.path.isdir(top):
            continue
        own = set()
        for d in [folder] + SHARED_WITH.get(folder, []):
            for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
                own |= {f for f in files if f.endswith(".h")}
        for dirpath, _, files in os.walk(top):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                for inc in INCLUDE.findall(open(path, errors="replace").read()):
                    base = os.path.basename(inc)
                    if base in internal and base not in own and base not in public:
                        problems.append("%s includes the library's internal header %s" %
                                        (os.path.relpath(path, ROOT), inc))


def check_lengths(problems):
    skip = {".git", "corpus"}
    for dirpath, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith("build")]
        for f in files:
            if not (f.endswith(SOURCE_EXT) or f == "CMakeLists.txt" or f == "Makefile"):
                continue
            path = os.path.join(dirpath, f)
            lines = open(path, errors="replace").read().split("\n")
            if len(lines) - 1 > MAX_LINES and LONG_MARK not in "\n".join(lines[:40]).lower():
                problems.append("%s has %d lines and says not why at its top (\"%s: ...\")" %
                                (os.path.relpath(path, ROOT), len(lines) - 1, LONG_MARK))


def main():
    show = "--graph" in sys.argv[1:]
    mods = modules()
    layer_of = {}
    for i, (_, names) in enumerate(LAYERS):
        for n in names:
            layer_of[n] = i
    problems = []
    for m in sorted(mods):
        if m not in layer_of:
            problems.append("module %s is on no layer (scripts/layers.py: LAYERS)" % m)
    for n in layer_of:
        if n not in mods:
            problems.append("layer module %s has no file in src/" % n)
    edges, misnamed = analyse(mods)
    for p, name in misnamed:
        problems.append("%s defines %s: not its module's prefix" % (p, name))
    for m in sorted(edges):
        for x in sorted(edges[m]):
            if m in layer_of and x in layer_of and layer_of[x] >= layer_of[m]:
                why = ", ".join(sorted(edges[m][x])[:4])
                problems.append("%s (layer %d) uses %s (layer %d): %s" % (m, layer_of[m], x, layer_of[x], why))
    for comp in cycles({m: set(e) for m, e in edges.items()}):
        problems.append("modules in a cycle: " + " -> ".join(comp))
    check_public_folders(problems)
    check_lengths(problems)
    print("layers of src/, lowest first (a module uses only lower layers):")
    for i, (what, names) in enumerate(LAYERS):
        print("  %2d  %-45s %s" % (i, what, " ".join(names)))
    if show:
        for m in sorted(edges):
            print("%s -> %s" % (m, " ".join(sorted(edges[m])) or "(nothing)"))
    edge_count = sum(len(e) for e in edges.values())
    if problems:
        for p in problems:
            print("FAILED: " + p)
        print("%d modules, %d edges: %d problem(s)" % (len(mods), edge_count, len(problems)))
        return 1
    print("ok: %d modules, %d edges, every one downward; no cycle; the folders over the public face use "
          "include/ only; every source file under %d lines or says why" % (len(mods), edge_count, MAX_LINES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
