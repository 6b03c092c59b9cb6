#!/usr/bin/env python3
"""Tests of tests/readme/check.py's reading of a README: what it must refuse
(a block without a marker, a marker without a block, an unknown kind, a
`none` without a reason, a command of the prose that no block runs) and how
it completes a C fragment. Prints what it checked; exits 1 on a failure."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402

failures = 0


def expect(name, text, *wanted):
    """The README text must be refused with every wanted phrase, or (none
    wanted) accepted."""
    global failures
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
        f.write(text)
    try:
        _, errors = check.parse(f.name)
    finally:
        os.unlink(f.name)
    joined = "\n".join(errors)
    ok = all(w in joined for w in wanted) if wanted else not errors
    print(f"{'ok' if ok else 'FAILED'}: {name}" + ("" if ok else f": got {errors or 'no error'}"))
    failures += not ok


MARKED = "<!-- readme-test: run -->\n```sh\nmake demo\n```\n"
expect("marked blocks and a command they run", MARKED + "Run `make demo` first.\n")
expect("a new C block without a marker", MARKED + "\n```c\nint x;\n```\n", "line 6: a fenced block (c) without a marker")
expect("a new sh block without a marker", MARKED + "\n```sh\nls\n```\n", "fenced block (sh) without a marker")
expect("a block with no language and no marker", "```\nout\n```\n", "(no language) without a marker")
expect("a marker followed by prose", "<!-- readme-test: run -->\ntext\n```sh\nls\n```\n",
       "line 1: a readme-test marker not followed", "line 3: a fenced block (sh) without a marker")
expect("a marker then a blank line", "<!-- readme-test: run -->\n\n```sh\nls\n```\n", "not followed by a fenced block")
expect("none without a reason", "<!-- readme-test: none: -->\n```\nx\n```\n", "'none:' needs a reason")
expect("none with a reason", "<!-- readme-test: none: a diagram -->\n```\nx\n```\n")
expect("an unknown kind", "<!-- readme-test: skip -->\n```sh\nls\n```\n", "unknown readme-test kind 'skip'")
expect("a C context that does not exist", "<!-- readme-test: c no-such-context -->\n```c\nint x;\n```\n",
       "no context tests/readme/no-such-context.c")
expect("an OpenSHMEM program", "<!-- readme-test: c use shmem -->\n```c\nint x;\n```\n")
expect("a mode that does not exist", "<!-- readme-test: c use upc -->\n```c\nint x;\n```\n", "'c NAME [mpi|ofi|shmem]'")
expect("a run block fenced as C", "<!-- readme-test: run -->\n```c\nint x;\n```\n", "must be fenced as bash or sh")
expect("an option of another kind", "<!-- readme-test: dry-run run=app -->\n```sh\nls\n```\n",
       "option 'run' does not apply")
expect("a command in the prose that no block runs", MARKED + "Then `make check PREFIX=/x`.\n",
       "the command `make check PREFIX=/x` is in no run or dry-run block")
expect("a command in a block that is not run", "<!-- readme-test: none: slow -->\n```sh\nbash bench/x.sh build\n```\n"
       "Run `bash bench/x.sh build`.\n", "the command `bash bench/x.sh build`")
expect("names and synopses are not commands", "`make`, `tests/mpi/run.sh <mpi> <ranks> <program>`, `FI_MR_LOCAL`\n")

# A fragment's leading includes, comments and functions go to the top.
top, body = check.split_c("#include <x.h>\n\n/* a\n * comment */\nstatic int f(int a) {\n  if (a) {\n"
                          "    return 1;\n  }\n  return 0;\n}\nint y = f(1);\n...\nf(y);\n")
ok = top[-1] == "}" and body == ["int y = f(1);", "...", "f(y);"]
print(f"{'ok' if ok else 'FAILED'}: a fragment split into its top and its body (top {top}, body {body})")
failures += not ok

sys.exit(1 if failures else 0)
